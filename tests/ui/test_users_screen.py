"""Administration – Users on real screens: the columns, "/" search on username, name and email,
sorting, reset MFA, unlock and delete behind a confirmation — and a million users without ever
loading them all."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from mfa_tui.core.access import Actor
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.config import Config
from mfa_tui.core.context import Context, open_context
from mfa_tui.core.demo import bulk_insert_users
from mfa_tui.core.models import MfaStatus, MfaType, Role
from mfa_tui.core.services.caller_check import CallerCheck
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.users import (
    GeneralFields,
    MatchCount,
    UserPager,
    UserQuery,
    UserService,
    UserView,
)
from mfa_tui.ui.widgets.user_table import UserTable
from tests.ui.conftest import (
    ADMIN,
    ADMIN_PASSWORD,
    add_user,
    admin_console,
    audit_events,
    code_now,
    credentials,
    enroll_totp,
    lockout_row,
    on_screen,
    search,
    settle,
    shown,
    user_row,
    wait_until,
)

COLUMNS = ("Username", "Name", "Email", "Role", "MFA Type", "MFA Status", "Locked")
# Username order: alice bob carol root. Name order: bob carol root alice.
PEOPLE = {
    "alice": ("Wonder Land", "alice@rabbit.example"),
    "bob": ("Builder Bob", "bob@site.example"),
    "carol": ("Captain Marvel", "danvers@hala.example"),
}
# The spec's bar is a million users; seeding a million (with the sort and search indexes)
# takes well over a minute on a 2-core machine, so the suite seeds what fits in about 30 s.
# MFA_TUI_TEST_SCALE_USERS=1000000 runs the full million.
USERS_AT_SCALE = int(os.environ.get("MFA_TUI_TEST_SCALE_USERS", "300000"))


@pytest.fixture
def people(ctx: Context, admin: UserView) -> None:
    fields = GeneralFields(display_name="Root Admin", email="root@example.com")
    UserService(ctx).update_general(Actor.cli(), admin.id, admin.version, fields)
    for name, (display_name, email) in PEOPLE.items():
        add_user(ctx, name, display_name=display_name, email=email)


def table(pilot: Pilot[Any]) -> UserTable:
    return pilot.app.screen.query_one("#users", UserTable)


def rows(pilot: Pilot[Any]) -> list[list[str]]:
    """The table's rows as the terminal shows them, split into words (scroll bar left out)."""
    region = table(pilot).scrollable_content_region
    lines = shown(pilot).splitlines()[region.y + 1 : region.bottom]  # below the header line
    cells = [line[region.x : region.right].split() for line in lines]
    return [words for words in cells if words]


def usernames(pilot: Pilot[Any]) -> list[str]:
    return [row[0] for row in rows(pilot)]


def row_of(pilot: Pilot[Any], name: str) -> str:
    lines = shown(pilot).splitlines()
    return next(line for line in lines if line.startswith(f"{name} "))


async def confirm(pilot: Pilot[Any], key: str) -> None:
    """Answer the confirmation dialog with ``key`` ("y" for yes, "escape" for no)."""
    await on_screen(pilot, "ConfirmScreen")
    await pilot.press(key)
    await on_screen(pilot, "UsersScreen")
    await settle(pilot)


async def test_columns_search_and_sort(ctx: Context, clock: FixedClock, people: None) -> None:
    async with admin_console(ctx, clock) as pilot:
        header = next(line for line in shown(pilot).splitlines() if line.startswith("Username"))
        positions = [header.index(title) for title in COLUMNS]
        assert positions == sorted(positions), header
        assert usernames(pilot) == ["alice", "bob", "carol", "root"]
        assert row_of(pilot, "carol").split()[-3:] == ["user", "None", "None"]

        # Typing filters after a short pause, without Enter: on username, name and email.
        await pilot.press("slash", *"aro")
        await pilot.pause(0.3)
        await wait_until(pilot, lambda: usernames(pilot) == ["carol"], "search while typing")
        await pilot.press("escape")  # clears the search (applied after the typing pause)
        everyone = ["alice", "bob", "carol", "root"]
        await wait_until(pilot, lambda: usernames(pilot) == everyone, "the cleared search")
        await search(pilot, "ARVEL")
        assert usernames(pilot) == ["carol"]  # display name, any case
        await pilot.press("escape")
        await search(pilot, "abbit.ex")
        assert usernames(pilot) == ["alice"]  # email
        await pilot.press("escape")
        await search(pilot, "zzz")
        assert "No users match." in shown(pilot)
        await pilot.press("escape")
        await settle(pilot)

        await pilot.press("o")  # sort by the next column: Name
        await wait_until(pilot, lambda: table(pilot).query_spec.sort == "display_name", "sort")
        await settle(pilot)
        assert usernames(pilot) == ["bob", "carol", "root", "alice"]
        await pilot.press("O")  # and the other way round
        await wait_until(pilot, lambda: table(pilot).query_spec.descending, "reverse sort")
        await settle(pilot)
        assert usernames(pilot) == ["alice", "root", "carol", "bob"]


async def test_reset_unlock_and_delete_each_ask_first(
    ctx: Context, clock: FixedClock, people: None
) -> None:
    alice_secret = enroll_totp(ctx, clock, "alice")
    enroll_totp(ctx, clock, "bob")
    for _ in range(5):
        MfaService(ctx).verify("bob", "000000")
    assert lockout_row(ctx, "bob").locked_at is not None  # type: ignore[union-attr]
    # alice calls and reads a code aloud: a reset needs a verified caller (issue 8).
    root = Actor(name=ADMIN, role=Role.ADMIN, user_id=UserService(ctx).get(ADMIN).id)
    code = code_now(alice_secret, clock)
    assert CallerCheck(ctx).check(root, "alice", code, "factor").status.verified
    async with admin_console(ctx, clock) as pilot:
        # Reset MFA ("r"): No changes nothing; Yes removes the factor and makes it pending.
        await search(pilot, "alice")
        assert row_of(pilot, "alice").split()[-2:] == ["Authenticator", "Configured"]
        await pilot.press("r")
        await confirm(pilot, "escape")
        assert credentials(ctx, "alice") == [("totp", "active")]
        await pilot.press("r")
        await confirm(pilot, "y")
        await wait_until(pilot, lambda: "Pending" in row_of(pilot, "alice"), "alice's new status")
        alice = user_row(ctx, "alice")
        assert alice is not None
        assert (alice.mfa_type, alice.mfa_status) == (MfaType.TOTP, MfaStatus.PENDING)
        assert credentials(ctx, "alice") == []

        # Unlock ("u").
        await pilot.press("escape")
        await search(pilot, "bob")
        assert row_of(pilot, "bob").split()[-1] == "Locked"
        await pilot.press("u")
        await confirm(pilot, "y")
        await wait_until(pilot, lambda: row_of(pilot, "bob").split()[-1] != "Locked", "unlock")
        row = lockout_row(ctx, "bob")
        assert row is not None and row.locked_at is None and row.failed_attempts == 0
        assert credentials(ctx, "bob") == [("totp", "active")]  # unlocking keeps the factor

        # Delete: Escape and the No button keep the user; only Yes deletes.
        await pilot.press("escape")
        await search(pilot, "carol")
        await pilot.press("delete")
        await confirm(pilot, "escape")
        await pilot.press("delete")
        await on_screen(pilot, "ConfirmScreen")
        await pilot.click("#no")
        await on_screen(pilot, "UsersScreen")
        assert user_row(ctx, "carol") is not None
        assert audit_events(ctx, "user.delete") == []
        await pilot.press("delete")
        await confirm(pilot, "y")
        await wait_until(pilot, lambda: "No users match." in shown(pilot), "carol's row to go")
    assert user_row(ctx, "carol") is None
    assert {name for name in PEOPLE if user_row(ctx, name)} == {"alice", "bob"}
    for action, target in (
        ("mfa.reset", "alice"),
        ("user.unlock", "bob"),
        ("user.delete", "carol"),
    ):
        [event] = audit_events(ctx, action)
        assert (event.actor, event.target) == (ADMIN, target)


@pytest.mark.slow
async def test_a_huge_table_is_never_loaded_whole(
    sqlite_url: str, tmp_path: Path, clock: FixedClock
) -> None:
    ctx = open_context(Config(database_url=sqlite_url, key_file=tmp_path / "secret.key"), clock)
    try:
        add_user(ctx, ADMIN, role=Role.ADMIN, password=ADMIN_PASSWORD)  # sorts after them all
        started = time.monotonic()
        bulk_insert_users(ctx, USERS_AT_SCALE)
        seeded = time.monotonic() - started
        async with admin_console(ctx, clock) as pilot:
            users = table(pilot)
            await wait_until(pilot, lambda: users.total == USERS_AT_SCALE + 1, "the count")
            await settle(pilot)
            painted = time.monotonic() - started - seeded  # login and the first page included
            page = UserTable.PAGE_SIZE
            assert len(usernames(pilot)) > 10  # the first screen is full
            assert users.pager.rows_fetched <= 2 * page
            await pilot.press("end")
            await wait_until(pilot, lambda: usernames(pilot)[-1:] == [ADMIN], "the last user")
            assert users.selected_user is not None and users.selected_user.username == ADMIN
            assert users.pager.rows_fetched <= 4 * page
            await pilot.press("home")
            await wait_until(pilot, lambda: users.cursor == 0, "the first user")
            assert users.selected_user is not None
            assert usernames(pilot)[0] == users.selected_user.username < ADMIN
            assert users.pager.rows_fetched <= 6 * page
    finally:
        ctx.close()
    print(
        f"seeded {USERS_AT_SCALE:,} users in {seeded:.0f} s; signed in and shown in {painted:.1f} s"
    )


async def test_rows_show_before_their_count_and_a_short_result_is_never_counted(
    ctx: Context, clock: FixedClock, admin: UserView, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At a million users the count takes longer than a page: the page must not wait for it."""
    bulk_insert_users(ctx, 2 * UserTable.PAGE_SIZE)
    # What the table showed when each count began (the worker hands the first page over first).
    shown_before_count: list[tuple[str, int, bool]] = []
    count = UserPager.count
    app_of_test: list[Any] = []

    def observed_count(pager: UserPager, query: UserQuery) -> MatchCount:
        if not app_of_test:  # the console's first load, before the test holds the app
            return count(pager, query)
        users = app_of_test[0].screen.query_one("#users", UserTable)
        shown_before_count.append((query.search, users.cached_rows, users.counting))
        return count(pager, query)

    monkeypatch.setattr(UserPager, "count", observed_count)
    async with admin_console(ctx, clock) as pilot:
        app_of_test.append(pilot.app)
        users = table(pilot)
        users.load(UserQuery())
        await wait_until(pilot, lambda: not users.counting, "the count")
        assert shown_before_count == [("", UserTable.PAGE_SIZE, True)]
        assert users.total == 2 * UserTable.PAGE_SIZE + 1 and users.exact
        assert "201 users" in str(pilot.app.screen.query_one("#users-status").render())

        await search(pilot, ADMIN)  # one match: the first page is the whole answer
        await wait_until(pilot, lambda: usernames(pilot) == [ADMIN], "the one match")
        assert (users.total, users.exact, users.counting) == (1, True, False)
        assert len(shown_before_count) == 1  # never counted
