"""Getting back in at the second-factor prompt: lockout and unlock, and "Lost your device?" requests.

Driven through real screens with Pilot on SQLite and PostgreSQL; the database and the audit log
are checked after every step a person takes.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select
from textual.pilot import Pilot
from textual.widgets import Input, Static

from mfa_tui.cli import main
from mfa_tui.core.access import Actor
from mfa_tui.core.audit import list_events
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.config import Config
from mfa_tui.core.context import Context
from mfa_tui.core.errors import PermissionDenied
from mfa_tui.core.models import ResetRequest
from mfa_tui.core.services.caller_check import CallerCheck
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.reset_requests import ResetRequests
from mfa_tui.core.services.users import UserService
from mfa_tui.ui.app import MfaTuiApp
from mfa_tui.ui.screens.confirm import ConfirmScreen
from mfa_tui.ui.screens.enrollment import EnrollmentScreen
from mfa_tui.ui.screens.override_reason import OverrideReasonScreen
from mfa_tui.ui.screens.preferences import PreferencesScreen
from mfa_tui.ui.screens.second_factor import SecondFactorScreen
from mfa_tui.ui.screens.users import UsersScreen
from mfa_tui.ui.widgets.user_table import UserTable
from tests.helpers.qr_decode import screen_text
from tests.ui.test_enrollment_flow import (
    SMALL,
    WIDE,
    active_credential_id,
    add_user,
    cheap_password_hashing,  # noqa: F401 - an autouse fixture, active here too
    configure_totp,
    credential_states,
    enter_code,
    log_in,
    log_out,
    on_screen,
    stored_user,
    text_of,
    until,
    wrong_code,
)

LOCKED = "the account is locked"


def audit_count(ctx: Context, action: str, target: str | None = None) -> int:
    with ctx.db.read() as session:
        return sum(
            1
            for event in list_events(session, text=action)
            if event.action == action and (target is None or event.target == target)
        )


def notices(pilot: Pilot[Any]) -> str:
    """The text of every notification (toast) on the screen, one line each.

    ``run_test`` leaves toasts out unless asked (``notifications=True``).
    """
    return "\n".join(str(toast.render()) for toast in pilot.app.screen.query("Toast"))


def open_requests(ctx: Context) -> list[str]:
    with ctx.db.read() as session:
        rows = session.exec(
            select(ResetRequest.user_id).where(ResetRequest.status == "pending")
        ).all()
    return sorted(UserService(ctx).get_by_id(user_id).username for user_id in rows)


def request_rows(ctx: Context) -> int:
    with ctx.db.read() as session:
        return session.exec(select(func.count()).select_from(ResetRequest)).one()


def row_of(pilot: Pilot[Any], username: str) -> str:
    """The users table row of ``username`` as the terminal shows it ("" when not shown)."""
    rows = [row.strip() for row in screen_text(pilot.app) if row.strip().startswith(username + " ")]
    return rows[0] if rows else ""


async def answer(pilot: Pilot[Any], code: str) -> str:
    """Enter ``code`` at the second-factor prompt and return what the prompt says back."""
    message = pilot.app.screen.query_one("#second-factor-message", Static)
    message.update("")
    await enter_code(pilot, code)
    await until(pilot, lambda: str(message.render()) != "", "the answer to the code")
    return str(message.render())


async def table_ready(pilot: Pilot[Any], username: str | None) -> UserTable:
    """The users table once loaded, with the cursor on ``username`` (None: the table is empty)."""
    table = pilot.app.screen.query_one("#users", UserTable)

    def selected() -> str | None:
        user = table.selected_user
        return user.username if user is not None else None

    await until(pilot, lambda: selected() == username, f"{username} selected in the table")
    return table


async def confirm(pilot: Pilot[Any], key: str | None, question: str) -> None:
    """Press ``key`` on the users screen and answer Yes to the confirmation it asks."""
    if key is not None:
        await pilot.press(key)
    dialog = await on_screen(pilot, ConfirmScreen)
    assert question in text_of(dialog, "#confirm-question")
    await pilot.press("y")
    await on_screen(pilot, UsersScreen)


# Point 4: lockout ---------------------------------------------------------------------------------


async def test_five_wrong_codes_lock_until_the_lock_runs_out_or_the_cli_unlocks(
    ctx: Context, clock: FixedClock, config: Config
) -> None:
    add_user(ctx, "alice")
    totp = configure_totp(ctx, clock, "alice")
    app = MfaTuiApp(context=ctx, clock=clock)
    async with app.run_test(size=SMALL) as pilot:
        for round_ in ("the lock runs out", "the CLI unlocks"):
            await log_in(pilot, "alice")
            await on_screen(pilot, SecondFactorScreen)
            answers = [await answer(pilot, wrong_code(totp, clock)) for _ in range(5)]
            assert answers[:4] == ["The code was not accepted."] * 4
            assert LOCKED in answers[4]  # said at once, not only at the next try
            assert UserService(ctx).get("alice").locked

            # Even the right code is refused while the lock lasts.
            assert LOCKED in await answer(pilot, totp.at(clock.now()))
            assert type(app.screen) is SecondFactorScreen and app.signed_in is None

            if round_ == "the lock runs out":
                clock.advance(minutes=15)
            else:
                # The console is still open: the operator unlocks from another terminal.
                printed = io.StringIO()
                argv = ["--db", config.database_url, "--key-file", str(config.key_file)]
                with pytest.raises(SystemExit) as exited, contextlib.redirect_stdout(printed):
                    main([*argv, "users", "unlock", "alice"])
                assert exited.value.code == 0
                assert "alice: unlocked." in printed.getvalue()
                clock.advance(seconds=30)
            assert not UserService(ctx).get("alice").locked
            await enter_code(pilot, totp.at(clock.now()))
            await on_screen(pilot, PreferencesScreen)
            await log_out(pilot)
            clock.advance(seconds=30)
    assert audit_count(ctx, "user.unlock", "alice") == 1


async def test_staff_see_locked_in_the_users_list_and_unlock_with_u(
    ctx: Context, clock: FixedClock
) -> None:
    add_user(ctx, "root", role="admin")
    add_user(ctx, "alice")
    totp = configure_totp(ctx, clock, "alice")
    for _ in range(5):
        MfaService(ctx).verify("alice", wrong_code(totp, clock))
    app = MfaTuiApp(context=ctx, clock=clock)
    async with app.run_test(size=WIDE) as pilot:
        await log_in(pilot, "alice")
        await on_screen(pilot, SecondFactorScreen)
        assert LOCKED in await answer(pilot, totp.at(clock.now()))
        await pilot.press("escape")

        await log_in(pilot, "root")
        await on_screen(pilot, UsersScreen)
        await table_ready(pilot, "alice")  # sorted by username: alice, then root
        assert row_of(pilot, "alice").endswith("Locked")
        await confirm(pilot, "u", "Unlock alice?")
        await until(pilot, lambda: not UserService(ctx).get("alice").locked, "the unlock")
        await until(pilot, lambda: not row_of(pilot, "alice").endswith("Locked"), "the list")
        assert audit_count(ctx, "user.unlock", "alice") == 1
    assert MfaService(ctx).verify("alice", totp.at(clock.now())).accepted


# Point 6: "Lost your device?" ---------------------------------------------------------------------


async def test_lost_device_request_approved_by_an_administrator_leads_to_enrollment(
    ctx: Context, clock: FixedClock
) -> None:
    add_user(ctx, "root", role="admin")
    add_user(ctx, "alice")
    add_user(ctx, "zed")  # someone without a request, hidden by the "q" filter
    configure_totp(ctx, clock, "alice")
    MfaService(ctx).generate_backup_codes(Actor.cli(), "alice")
    app = MfaTuiApp(context=ctx, clock=clock)
    async with app.run_test(size=WIDE, notifications=True) as pilot:
        await log_in(pilot, "alice")
        prompt = await on_screen(pilot, SecondFactorScreen)
        lost = prompt.query_one("#lost-device")
        await pilot.click("#lost-device")
        assert "sent to the helpdesk" in text_of(prompt, "#second-factor-message")
        # A button ignores clicks for 0.2 s after one (a double click is one press): wait it out.
        await until(pilot, lambda: not lost.has_class("-active"), "the button to be pressable")
        await pilot.click("#lost-device")
        assert "already waiting" in text_of(prompt, "#second-factor-message")
        assert open_requests(ctx) == ["alice"] and request_rows(ctx) == 1
        assert audit_count(ctx, "reset_request.create", "alice") == 1
        assert credential_states(ctx, "alice") == ["active"]  # nothing changes before staff act
        await pilot.press("escape")

        await log_in(pilot, "root")
        users = await on_screen(pilot, UsersScreen)
        await table_ready(pilot, "alice")
        assert row_of(pilot, "alice").endswith("Reset?")
        assert not row_of(pilot, "zed").endswith("Reset?")
        await pilot.press("q")
        await until(pilot, lambda: "with a reset request" in text_of(users, "#users-status"), "q")
        assert text_of(users, "#users-status").startswith("1 user ")
        assert row_of(pilot, "zed") == ""
        await table_ready(pilot, "alice")
        # The request proved only alice's password: an administrator who did not verify the
        # caller overrides with a reason, which the audit log keeps.
        await pilot.press("a")
        reason = await on_screen(pilot, OverrideReasonScreen)
        reason.query_one("#reason", Input).value = "Ticket 4711: ID checked at the desk"
        await pilot.press("enter")
        await confirm(pilot, None, "Approve the reset request of alice?")
        await until(pilot, lambda: open_requests(ctx) == [], "the approval")
        await table_ready(pilot, None)

        user = stored_user(ctx, "alice")
        assert (user.mfa_type, user.mfa_status) == ("totp", "pending")
        assert credential_states(ctx, "alice") == []
        assert MfaService(ctx).backup_codes_left("alice") == 0
        assert audit_count(ctx, "reset_request.approved", "alice") == 1
        assert audit_count(ctx, "mfa.reset", "alice") == 1
        with ctx.db.read() as session:
            [reset] = [e for e in list_events(session, text="mfa.reset") if e.action == "mfa.reset"]
        assert reset.details["reason"] == "Ticket 4711: ID checked at the desk"

        await log_out(pilot)
        await log_in(pilot, "alice")
        await on_screen(pilot, EnrollmentScreen)
        await until(pilot, lambda: "was approved" in notices(pilot), "the notification")
    assert ResetRequests(ctx).decision_to_tell(user.id) is None  # told once


async def test_helpdesk_denies_and_approves_for_role_user_only(
    ctx: Context, clock: FixedClock
) -> None:
    add_user(ctx, "hd", role="helpdesk")
    hd = Actor(name="hd", role="helpdesk", user_id=UserService(ctx).get("hd").id)
    authenticators = {}
    for name, role in (("bob", "user"), ("carol", "user"), ("hd2", "helpdesk")):
        add_user(ctx, name, role=role)
        authenticators[name] = configure_totp(ctx, clock, name)
        assert ResetRequests(ctx).request(UserService(ctx).get(name).id)
    clock.advance(seconds=30)
    # carol reads a code aloud to hd (the caller check of Administration – Users, "v").
    carol_code = authenticators["carol"].at(clock.now())
    assert CallerCheck(ctx).check(hd, "carol", carol_code, "factor").status.verified
    # hd may not even check an agent's identity (helpdesk acts on role user only): refused.
    with pytest.raises(PermissionDenied):
        CallerCheck(ctx).check(hd, "hd2", authenticators["hd2"].at(clock.now()), "factor")
    bob_factor = active_credential_id(ctx, "bob")
    app = MfaTuiApp(context=ctx, clock=clock)
    async with app.run_test(size=WIDE, notifications=True) as pilot:
        await log_in(pilot, "hd")
        users = await on_screen(pilot, UsersScreen)
        await pilot.press("q")
        await until(pilot, lambda: text_of(users, "#users-status").startswith("3 users"), "q")
        await table_ready(pilot, "bob")

        await confirm(pilot, "d", "Deny the reset request of bob?")
        await table_ready(pilot, "carol")  # bob's request is decided: the list is carol, hd2
        assert active_credential_id(ctx, "bob") == bob_factor
        assert stored_user(ctx, "bob").mfa_status == "configured"
        assert audit_count(ctx, "reset_request.denied", "bob") == 1

        await confirm(pilot, "a", "Approve the reset request of carol?")
        await table_ready(pilot, "hd2")
        assert stored_user(ctx, "carol").mfa_status == "pending"
        assert credential_states(ctx, "carol") == []

        await pilot.press("a")  # hd2 is helpdesk staff: refused before any caller check
        refusal = "Helpdesk staff can only act on users with the role user."
        await until(pilot, lambda: refusal in notices(pilot), "the refusal")
        assert open_requests(ctx) == ["hd2"]
        assert credential_states(ctx, "hd2") == ["active"]
        assert audit_count(ctx, "denied", "hd2") == 2  # the caller check above, and this

        await log_out(pilot)
        await log_in(pilot, "bob")
        await on_screen(pilot, SecondFactorScreen)
        await until(pilot, lambda: "was denied" in notices(pilot), "the notification")
