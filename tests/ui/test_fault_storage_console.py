"""Storage faults seen from a signed-in administrator's console, not only from the CLI.

With User edit open and a change typed, the database becomes unusable — SQLite locked by another
process past the busy timeout, SQLite on a file system remounted read-only, or the PostgreSQL
server stopped — and Update says so in one sentence: the app keeps running and taking keys,
nothing is saved, and the same Update succeeds once the fault is gone. The Users screen says the
same when its rows cannot be read, and shows them again once the server is back.

The read-only case mounts a file system (root only, else skipped with the reason, as in
``tests/core/test_faults.py``); the PostgreSQL case stops a private cluster of its own.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from textual.pilot import Pilot
from textual.widgets import Button, Input

from mfa_tui.core import db
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.config import Config
from mfa_tui.core.context import Context, open_context
from mfa_tui.core.models import Role
from mfa_tui.core.services.users import UserView
from tests.core import test_faults
from tests.core.test_faults import _mount, needs_root
from tests.helpers.private_postgres import PrivateCluster, private_cluster
from tests.ui.conftest import (
    ADMIN,
    ADMIN_PASSWORD,
    add_user,
    admin_console,
    audit_events,
    click,
    console,
    enroll_totp,
    fill,
    notifications,
    on_screen,
    screen_name,
    search,
    search_and_open,
    shown,
    static_text,
    user_row,
    wait_until,
)
from tests.ui.test_fault_gateways import waiting

pytestmark = pytest.mark.slow  # another process holds the lock; mount and pg_ctl run as children
NEW_NAME = "Alice Liddell"
mounts = test_faults.mounts  # the fixture: every mount point is unmounted at the end


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    with private_cluster() as started:
        yield started


@contextmanager
def write_lock(database: Path) -> Iterator[None]:
    """Another process holds SQLite's write lock (a write transaction left open) until the end."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys\n"
            f"c = sqlite3.connect({str(database)!r}, isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        yield
    finally:
        holder.communicate("", timeout=30)  # the other process ends its transaction


async def edit_alice(pilot: Pilot[Any]) -> None:
    """User edit for alice with a new display name typed in, not saved yet."""
    await search_and_open(pilot, "alice")
    await fill(pilot, "#display-name", NEW_NAME)


async def update_refused(pilot: Pilot[Any], expected: str, *, slow: bool = False) -> str:
    """Update, then one sentence starting with ``expected``; the form stays and takes keys all
    along (``slow``: while the save still waits for the database)."""
    # pilot.click, not the ``click`` helper: that one waits for the workers to finish.
    assert await pilot.click(pilot.app.screen.query_one("#update", Button))
    field = pilot.app.screen.query_one("#phone", Input)
    field.focus()
    await pilot.press(*"+1415")
    assert field.value == "+1415"
    assert waiting(pilot, "save") or not slow, "the save did not wait for the lock"
    field.value = ""  # cleared again before the retry
    await wait_until(
        pilot,
        lambda: static_text(pilot, "#edit-message").startswith(expected),
        f"{expected!r} under the form",
    )
    message = static_text(pilot, "#edit-message")
    assert "\n" not in message.strip() and "Traceback" not in shown(pilot), shown(pilot)
    assert pilot.app.is_running and screen_name(pilot) == "UserEditScreen"
    assert not pilot.app.screen.query_one("#update", Button).disabled
    return message


async def update_saved(pilot: Pilot[Any]) -> None:
    await click(pilot, "#update")
    await on_screen(pilot, "UsersScreen")


def unchanged(ctx: Context) -> None:
    alice = user_row(ctx, "alice")
    assert alice is not None and alice.display_name is None, alice
    assert audit_events(ctx, "user.update") == []


def saved_once(ctx: Context) -> None:
    alice = user_row(ctx, "alice")
    assert alice is not None and alice.display_name == NEW_NAME, alice
    assert len(audit_events(ctx, "user.update")) == 1
    with ctx.db.read() as session:
        assert ctx.audit.verify(session).ok


# SQLite -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_write_lock_held_past_the_busy_timeout_then_update_again(
    ctx: Context,
    clock: FixedClock,
    admin: UserView,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_user(ctx, "alice")
    # The real 10 s, shortened; long enough to type into the form while the save waits.
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 4000)  # room to type, under load
    ctx.db.dispose()  # connections made from now on wait this long for a lock
    async with admin_console(ctx, clock) as pilot:
        await edit_alice(pilot)
        with write_lock(tmp_path / "mfa.db"):
            message = await update_refused(
                pilot,
                "The database is busy (locked by another process); try again in a moment.",
                slow=True,
            )
            unchanged(ctx)  # reading still works under another's write lock (WAL)
        await update_saved(pilot)  # the lock is gone: the same Update
    saved_once(ctx)
    print(
        f"\nSQLite write lock in the console: 1 fault, Update said {message!r}, "
        "5 keys typed while the save waited 4 s for the lock, 0 changes saved, "
        "1 retry succeeded"
    )


def make_read_only(point: Path, ctx: Context) -> None:
    """Remount ``point`` read-only. A mount with a file open for writing cannot become read-only,
    so the console's pooled connections are closed first (its background poll may open one again
    at that very moment: then once more)."""
    for _ in range(50):
        ctx.db.dispose()
        done = subprocess.run(
            ["mount", "-o", "remount,bind,ro", str(point)], capture_output=True, text=True
        )
        if done.returncode == 0:
            return
        time.sleep(0.05)
    pytest.fail(f"could not remount {point} read-only: {done.stderr}")


@needs_root
async def test_a_read_only_database_then_update_again(
    tmp_path: Path, clock: FixedClock, mounts: list[Path]
) -> None:
    data, view = tmp_path / "data", tmp_path / "view"
    data.mkdir()
    view.mkdir()
    _mount("--bind", str(data), str(view))
    mounts.append(view)
    ctx = open_context(Config(f"sqlite:///{view / 'mfa.db'}", tmp_path / "secret.key"), clock)
    try:
        add_user(ctx, ADMIN, role=Role.ADMIN, password=ADMIN_PASSWORD)
        add_user(ctx, "alice")
        async with admin_console(ctx, clock) as pilot:
            await edit_alice(pilot)
            make_read_only(view, ctx)
            try:
                message = await update_refused(pilot, "")
                assert "read-only" in message or "Cannot open the database" in message, message
            finally:
                _mount("-o", "remount,bind,rw", str(view))  # the console's pool is left as is
            unchanged(ctx)
            await update_saved(pilot)
        saved_once(ctx)
    finally:
        ctx.close()
    print(
        f"\nSQLite read-only in the console: 1 fault, Update said {message!r}, "
        "0 changes saved, the app kept taking keys, 1 retry succeeded"
    )


# PostgreSQL -------------------------------------------------------------------------------------


async def test_the_postgresql_server_stopped_mid_session_then_back(
    cluster: PrivateCluster, tmp_path: Path, clock: FixedClock
) -> None:
    # A database of its own: the module's cluster already holds another test's users and key.
    admin = create_engine(cluster.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("DROP DATABASE IF EXISTS second_factor"))
        connection.execute(text("CREATE DATABASE second_factor"))
    admin.dispose()
    url = cluster.url.rsplit("/", 1)[0] + "/second_factor"
    ctx = open_context(Config(url, tmp_path / "secret.key"), clock)
    unreachable = "Cannot reach the database server"
    try:
        add_user(ctx, ADMIN, role=Role.ADMIN, password=ADMIN_PASSWORD)
        add_user(ctx, "alice")
        add_user(ctx, "bob")
        async with admin_console(ctx, clock) as pilot:
            await edit_alice(pilot)
            cluster.stop()
            try:
                message = await update_refused(pilot, unreachable)
                await pilot.press("escape")  # Cancel: back to the users
                await on_screen(pilot, "UsersScreen")
                await search(pilot, "bob")  # the rows cannot be read: said, and the app runs
                await wait_until(
                    pilot,
                    lambda: static_text(pilot, "#users-status").startswith(unreachable),
                    "the users screen to say the server cannot be reached",
                )
                status = static_text(pilot, "#users-status")
                assert "\n" not in status.strip() and "Traceback" not in shown(pilot), status
                await pilot.press("enter")  # open the row still shown: said, nothing opens
                await wait_until(
                    pilot,
                    lambda: any(n.startswith(unreachable) for n in notifications(pilot)),
                    "the editor's refusal",
                )
                assert pilot.app.is_running and screen_name(pilot) == "UsersScreen"
                said = len(notifications(pilot))
                await pilot.press("n")  # a new user: its form needs the server's MFA types
                await wait_until(
                    pilot,
                    lambda: any(n.startswith(unreachable) for n in notifications(pilot)[said:]),
                    "the new-user form's refusal",
                )
                assert pilot.app.is_running and screen_name(pilot) == "UsersScreen"
            finally:
                cluster.start()

            unchanged(ctx)
            await search(pilot, "alice")  # the server is back: the same screen works
            await wait_until(
                pilot,
                lambda: static_text(pilot, "#users-status").startswith("1 user matching 'alice'"),
                "alice's row",
            )
            await pilot.press("enter")
            await on_screen(pilot, "UserEditScreen")
            await fill(pilot, "#display-name", NEW_NAME)
            await update_saved(pilot)
        saved_once(ctx)
    finally:
        ctx.close()
    print(
        f"\nPostgreSQL stopped mid-session in the console: 1 fault, Update said {message!r}, "
        f"the users screen said {status!r}, 0 changes saved, 1 retry succeeded"
    )


async def test_the_second_factor_prompt_with_the_server_gone(
    cluster: PrivateCluster, tmp_path: Path, clock: FixedClock
) -> None:
    """The prompt reads the settings and files a "Lost your device?" request in workers: with the
    server gone each is one sentence on the screen, and the console keeps running."""
    from mfa_tui.core.services.users import UserService
    from mfa_tui.ui.screens.second_factor import SecondFactorScreen

    # A database of its own: the module's cluster already holds another test's users and key.
    admin = create_engine(cluster.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("DROP DATABASE IF EXISTS second_factor"))
        connection.execute(text("CREATE DATABASE second_factor"))
    admin.dispose()
    url = cluster.url.rsplit("/", 1)[0] + "/second_factor"
    ctx = open_context(Config(url, tmp_path / "secret.key"), clock)
    unreachable = "Cannot reach the database server"
    try:
        add_user(ctx, ADMIN, role=Role.ADMIN, password=ADMIN_PASSWORD)
        add_user(ctx, "alice")
        enroll_totp(ctx, clock, "alice")
        alice = UserService(ctx).get("alice")
        async with console(ctx, clock) as pilot:
            cluster.stop()
            try:
                pilot.app.push_screen(SecondFactorScreen(alice, "totp"))
                await on_screen(pilot, "SecondFactorScreen")
                await wait_until(
                    pilot,
                    lambda: static_text(pilot, "#second-factor-message").startswith(unreachable),
                    "the prompt to say the server cannot be reached",
                )
                assert not pilot.app.screen.query_one("#use-backup-code", Button).display
                pilot.app.screen.query_one("#second-factor-message").update("")
                await click(pilot, "#lost-device")
                await wait_until(
                    pilot,
                    lambda: static_text(pilot, "#second-factor-message").startswith(unreachable),
                    "the request to say the server cannot be reached",
                )
                assert pilot.app.is_running and screen_name(pilot) == "SecondFactorScreen"
            finally:
                cluster.start()
    finally:
        ctx.close()
