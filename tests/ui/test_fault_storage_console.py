"""Storage faults seen from a signed-in administrator's console, not only from the CLI.

With User edit open and a change typed, the database becomes unusable — SQLite locked by another
process past the busy timeout, SQLite on a file system remounted read-only or full, or the PostgreSQL
server stopped — and Update says so in one sentence: the app keeps running and taking keys,
nothing is saved, and the same Update succeeds once the fault is gone. The Users screen says the
same when its rows cannot be read, and shows them again once the server is back; so do Server
Settings (not opened), Preferences (opened empty, r reads again), a login whose record cannot be
written (no session), a setup left unfinished, a database file moved away while in use, and a
database file that is not a database.

The read-only case mounts a file system (root only, else skipped with the reason, as in
``tests/core/test_faults.py``); the PostgreSQL case stops a private cluster of its own.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
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
from tests.core.test_faults import _mount, fill_up, needs_root
from tests.helpers.private_postgres import PrivateCluster, private_cluster
from tests.ui.conftest import (
    ADMIN,
    ADMIN_PASSWORD,
    add_user,
    admin_console,
    audit_events,
    click,
    console,
    credentials,
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


@asynccontextmanager
async def alice_edited_on(
    database: Path, tmp_path: Path, clock: FixedClock
) -> AsyncIterator[tuple[Context, Pilot[Any]]]:
    """A console on the SQLite file ``database`` with User edit open on alice and a change typed;
    by the end of the block that change must have been saved exactly once."""
    ctx = open_context(Config(f"sqlite:///{database}", tmp_path / "secret.key"), clock)
    try:
        add_user(ctx, ADMIN, role=Role.ADMIN, password=ADMIN_PASSWORD)
        add_user(ctx, "alice")
        async with admin_console(ctx, clock) as pilot:
            await edit_alice(pilot)
            yield ctx, pilot
        saved_once(ctx)
    finally:
        ctx.close()


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


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_database_file_moved_away_then_put_back(
    ctx: Context, clock: FixedClock, admin: UserView, tmp_path: Path
) -> None:
    """SQLite would have saved into the moved file's inode, lost for whoever opens the path."""
    add_user(ctx, "alice")
    path, moved = tmp_path / "mfa.db", tmp_path / "moved.db"
    async with admin_console(ctx, clock) as pilot:
        await edit_alice(pilot)
        path.rename(moved)
        try:
            message = await update_refused(
                pilot, f"The database file {path} was deleted or moved while in use; put it back"
            )
            assert not path.exists()  # no new, empty database made in its place
        finally:
            moved.rename(path)
        unchanged(ctx)
        await update_saved(pilot)
    saved_once(ctx)
    print(
        f"\nSQLite file moved away in the console: 1 fault, Update said {message!r}, "
        "0 changes saved, 1 retry succeeded once it was back"
    )


@needs_root
async def test_a_full_disk_then_update_again(
    tmp_path: Path, clock: FixedClock, mounts: list[Path]
) -> None:
    small = tmp_path / "small"
    small.mkdir()
    _mount("-t", "tmpfs", "-o", "size=8m", "tmpfs", str(small))
    mounts.append(small)
    async with alice_edited_on(small / "mfa.db", tmp_path, clock) as (ctx, pilot):
        filler = fill_up(small)
        try:
            message = await update_refused(pilot, "")
            assert "full" in message or "disk I/O error" in message, message
        finally:
            filler.unlink()
        unchanged(ctx)
        await update_saved(pilot)
    print(
        f"\nSQLite disk full in the console: 1 fault, Update said {message!r}, "
        "0 changes saved, 1 retry succeeded once there was room"
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
    async with alice_edited_on(view / "mfa.db", tmp_path, clock) as (ctx, pilot):
        make_read_only(view, ctx)
        try:
            message = await update_refused(pilot, "")
            assert "read-only" in message or "Cannot open the database" in message, message
        finally:
            _mount("-o", "remount,bind,rw", str(view))  # the console's pool is left as is
        unchanged(ctx)
        await update_saved(pilot)
    print(
        f"\nSQLite read-only in the console: 1 fault, Update said {message!r}, "
        "0 changes saved, the app kept taking keys, 1 retry succeeded"
    )


# PostgreSQL -------------------------------------------------------------------------------------


async def test_the_postgresql_server_stopped_mid_session_then_back(
    cluster: PrivateCluster, tmp_path: Path, clock: FixedClock
) -> None:
    unreachable = "Cannot reach the database server"
    with own_context(cluster, "mid_session", tmp_path, clock) as ctx:
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
                said = len(notifications(pilot))
                await pilot.press("s")  # Server Settings: read before the screen opens
                await wait_until(
                    pilot,
                    lambda: any(n.startswith(unreachable) for n in notifications(pilot)[said:]),
                    "the settings' refusal",
                )
                assert pilot.app.is_running and screen_name(pilot) == "UsersScreen"
                await pilot.press("p")  # Preferences opens, says it, and offers nothing yet
                await on_screen(pilot, "PreferencesScreen")
                preferences_said = await preferences_cannot_read(pilot, unreachable)
            finally:
                cluster.start()

            await pilot.press("r")  # the server is back: Preferences reads it again
            await wait_until(
                pilot,
                lambda: static_text(pilot, "#own-mfa").startswith(f"Signed in as {ADMIN}."),
                "Preferences filled in",
            )
            assert static_text(pilot, "#preferences-message") == ""
            assert not pilot.app.screen.query_one("#change-type", Button).disabled
            await pilot.press("escape")
            await on_screen(pilot, "UsersScreen")
            await pilot.press("s")
            await on_screen(pilot, "ServerSettingsScreen")
            await pilot.press("escape")
            await on_screen(pilot, "UsersScreen")
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
    print(
        f"\nPostgreSQL stopped mid-session in the console: 1 fault, Update said {message!r}, "
        f"the users screen said {status!r}, Preferences said {preferences_said!r}, "
        "0 changes saved, 1 retry succeeded"
    )


async def preferences_cannot_read(pilot: Pilot[Any], expected: str) -> str:
    """Preferences says in one sentence why it shows nothing, and no action can be pressed."""
    await wait_until(
        pilot,
        lambda: static_text(pilot, "#preferences-message").startswith(expected),
        "Preferences to say the database cannot be read",
    )
    message = static_text(pilot, "#preferences-message")
    assert message.endswith("Press r to read it again."), message
    assert "Traceback" not in shown(pilot)
    for button in ("#reconfigure", "#generate-backup-codes", "#change-type"):
        assert pilot.app.screen.query_one(button, Button).disabled, button
    return message


async def test_a_login_whose_record_cannot_be_written_does_not_start_a_session(
    cluster: PrivateCluster, tmp_path: Path, clock: FixedClock
) -> None:
    """The password and factor are proven but the server goes before the login is recorded:
    the console returns to the login screen with the reason, signed in as nobody."""
    from mfa_tui.core.services.users import UserService

    unreachable = "Not signed in: Cannot reach the database server"
    with own_context(cluster, "login_record", tmp_path, clock) as ctx:
        admin = UserService(ctx).get(ADMIN)
        async with console(ctx, clock) as pilot:
            cluster.stop()
            try:
                pilot.app.start_session(admin, "password")
                await wait_until(
                    pilot,
                    lambda: (
                        screen_name(pilot) == "LoginScreen"
                        and static_text(pilot, "#login-message").startswith(unreachable)
                    ),
                    "the login screen to say why",
                )
                assert pilot.app.signed_in is None and screen_name(pilot) == "LoginScreen"
                assert pilot.app.is_running and "Traceback" not in shown(pilot)
            finally:
                cluster.start()
            pilot.app.start_session(admin, "password")
            await on_screen(pilot, "UsersScreen")
            assert pilot.app.signed_in is not None
        assert len(audit_events(ctx, "login.success")) == 1


@contextmanager
def own_context(
    cluster: PrivateCluster, name: str, tmp_path: Path, clock: FixedClock
) -> Iterator[Context]:
    """A new database in the private cluster (another test's users and key are in the cluster's
    own), opened, with the administrator in it."""
    admin = create_engine(cluster.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        connection.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    url = cluster.url.rsplit("/", 1)[0] + f"/{name}"
    ctx = open_context(Config(url, tmp_path / "secret.key"), clock)
    try:
        add_user(ctx, ADMIN, role=Role.ADMIN, password=ADMIN_PASSWORD)
        yield ctx
    finally:
        ctx.close()


async def test_a_damaged_database_file_is_said_on_the_login_screen(
    tmp_path: Path, clock: FixedClock
) -> None:
    """Not an SQLite file at all (a bad restore, another program's file): one sentence on the
    login screen instead of a traceback, and the console still quits with Ctrl+Q."""
    from mfa_tui.ui.app import MfaTuiApp

    database = tmp_path / "mfa.db"
    database.write_bytes(b"this is not an SQLite database\n" * 200)
    app = MfaTuiApp(Config(f"sqlite:///{database}", tmp_path / "secret.key"), clock=clock)
    async with app.run_test() as pilot:
        await wait_until(
            pilot,
            lambda: "damaged" in static_text(pilot, "#login-message"),
            "the login screen to say the file is damaged",
        )
        message = static_text(pilot, "#login-message")
        assert message == (
            "Cannot open the database: The database file is damaged or is not a database "
            "(file is not a database); restore it from a backup. Press Ctrl+Q to quit."
        )
        assert pilot.app.screen.query_one("#log-in", Button).disabled
        await pilot.press("ctrl+q")
    assert app.return_code == 0
    assert database.read_bytes() == b"this is not an SQLite database\n" * 200  # left as found


async def test_the_second_factor_prompt_with_the_server_gone(
    cluster: PrivateCluster, tmp_path: Path, clock: FixedClock
) -> None:
    """The prompt reads the settings and files a "Lost your device?" request in workers: with the
    server gone each is one sentence on the screen, and the console keeps running."""
    from mfa_tui.core.services.users import UserService
    from mfa_tui.ui.screens.second_factor import SecondFactorScreen

    unreachable = "Cannot reach the database server"
    with own_context(cluster, "prompt", tmp_path, clock) as ctx:
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


async def test_a_setup_left_while_the_server_is_gone(
    cluster: PrivateCluster, tmp_path: Path, clock: FixedClock
) -> None:
    """Configure now, then Cancel with the server stopped: the editor closes, one sentence says
    the unfinished setup stays (it never logs anyone in), and the next setup replaces it."""
    from tests.ui.test_user_edit_flow import choose_type

    unreachable = "The unfinished setup stays until the next one: Cannot reach the database server"
    with own_context(cluster, "left_setup", tmp_path, clock) as ctx:
        add_user(ctx, "alice")
        async with admin_console(ctx, clock) as pilot:
            await search_and_open(pilot, "alice")
            await choose_type(pilot, "totp")
            await click(pilot, "#configure-now")
            assert credentials(ctx, "alice") == [("totp", "verifying")]
            cluster.stop()
            try:
                await pilot.press("escape")  # Cancel
                await wait_until(
                    pilot,
                    lambda: any(n.startswith(unreachable) for n in notifications(pilot)),
                    "the notice that the setup stays",
                )
                assert pilot.app.is_running and screen_name(pilot) == "UsersScreen"
                assert "Traceback" not in shown(pilot)
            finally:
                cluster.start()
            assert credentials(ctx, "alice") == [("totp", "verifying")]  # never valid for login
            await search_and_open(pilot, "alice")
            await choose_type(pilot, "totp")
            await click(pilot, "#configure-now")
            assert credentials(ctx, "alice") == [("totp", "verifying")]  # replaced, not added
            await pilot.press("escape")
            await on_screen(pilot, "UsersScreen")
            await wait_until(pilot, lambda: credentials(ctx, "alice") == [], "the setup removed")
