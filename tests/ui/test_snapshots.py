"""Snapshot tests: every console screen at 80×24 and at 120×40, as a person would see it.

Each test drives the real app (``MfaTuiApp`` on a real SQLite file) to a screen with the keys a
person would press, and compares its SVG screenshot with the one stored under
``tests/ui/__snapshots__/``. After an intended change of the UI, regenerate and review them:

    pytest tests/ui/test_snapshots.py --snapshot-update

then look at the changed SVGs (any browser shows them) before committing them. A failing run
writes ``snapshot_report.html`` with the old and new screens side by side.

Everything shown is fixed: the clock (a ``FixedClock``, also behind the Logs timestamps), the
TOTP secret (``otp.new_secret`` returns the RFC 6238 test secret, so the QR code is stable), the
database content (built once per module from a fixed recipe, then copied for each test),
animations (``TEXTUAL_ANIMATION=none``, set in tests/conftest.py) and the text cursor (its blink
is switched off, so it is always drawn).
"""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Input

from mfa_tui.core import otp
from mfa_tui.core.access import Actor
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.config import Config
from mfa_tui.core.context import Context, open_context
from mfa_tui.core.demo import bulk_insert_users
from mfa_tui.core.models import MfaType, Role
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.users import UserService
from mfa_tui.ui.app import MfaTuiApp
from mfa_tui.ui.screens.audit_log import AuditLogScreen
from mfa_tui.ui.screens.confirm import ConfirmScreen
from mfa_tui.ui.screens.enrollment import EnrollmentScreen
from mfa_tui.ui.screens.first_run import FirstRunScreen
from mfa_tui.ui.screens.login import LoginScreen
from mfa_tui.ui.screens.preferences import PreferencesScreen
from mfa_tui.ui.screens.qr_full import QrFullScreen
from mfa_tui.ui.screens.second_factor import SecondFactorScreen
from mfa_tui.ui.screens.user_edit import UserEditScreen
from mfa_tui.ui.screens.users import UsersScreen

SECRET = b"12345678901234567890"  # RFC 6238 Appendix B
NOW = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)
PASSWORD = "Tr0ub4dor&3x"
SEEDER = Actor(name="cli:operator", role="cli")  # not cli:<os-user>: the Logs must not vary
GENERATED_USERS = 30
# Generated users, found with "/" and a search that matches only them (fewer keys, faster tests).
PENDING_USER = ("barbara.l", "barbara.lovelace0000006")  # Authenticator, pending user configuration
PLAIN_USER = ("margaret.l", "margaret.lovelace0000004")  # no MFA
SETTLE_TIMEOUT = 15.0

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]

Flow = Callable[[Pilot[None]], Awaitable[None]]


@dataclass(frozen=True)
class SeededFiles:
    database: Path
    key: Path


@pytest.fixture(autouse=True)
def fixed_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(otp, "new_secret", lambda: SECRET)


@pytest.fixture(scope="module")
def seeded_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededFiles]:
    """One database for the module: argon2 hashing is slow, so it is built once and copied."""
    folder = tmp_path_factory.mktemp("seeded")
    files = SeededFiles(folder / "mfa.db", folder / "secret.key")
    clock = FixedClock(NOW)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(otp, "new_secret", lambda: SECRET)
        ctx = open_context(Config(f"sqlite:///{files.database}", files.key), clock)
        try:
            _seed(ctx)
        finally:
            ctx.close()
    yield files


def _seed(ctx: Context) -> None:
    users, mfa = UserService(ctx), MfaService(ctx)
    for name, role, password in (
        ("admin", Role.ADMIN, None),
        ("helpdesk", Role.HELPDESK, None),
        ("alice", Role.USER, PASSWORD),
        ("carol", Role.USER, PASSWORD),
    ):
        users.create(
            SEEDER,
            name,
            display_name=name.capitalize(),
            email=f"{name}@example.com",
            role=role,
            password=password,
        )
    mfa.set_type(SEEDER, "alice", MfaType.TOTP, configure_later=True)
    start = mfa.begin_enrollment(SEEDER, "carol", MfaType.TOTP)
    code = otp.code_at(SECRET, NOW.timestamp(), otp.TotpParameters())
    assert mfa.confirm_code(SEEDER, start.credential_id, code)
    mfa.activate(SEEDER, "carol", start.credential_id)
    bulk_insert_users(ctx, GENERATED_USERS)


@pytest.fixture
def app_on(tmp_path: Path, seeded_files: SeededFiles) -> Iterator[Callable[[bool], MfaTuiApp]]:
    """A factory of apps on a fresh copy of the seeded database (or on an empty one)."""
    contexts: list[Context] = []

    def make(seeded: bool = True) -> MfaTuiApp:
        database, key = tmp_path / "mfa.db", tmp_path / "secret.key"
        if seeded:
            for suffix in ("", "-wal"):  # a closed SQLite database has no -wal; copy one if it has
                source = Path(f"{seeded_files.database}{suffix}")
                if source.exists():
                    shutil.copyfile(source, f"{database}{suffix}")
            shutil.copyfile(seeded_files.key, key)
            key.chmod(0o600)
        clock = FixedClock(NOW)
        ctx = open_context(Config(f"sqlite:///{database}", key), clock)
        contexts.append(ctx)
        return MfaTuiApp(context=ctx, clock=clock)

    yield make
    for ctx in contexts:
        ctx.close()


# Driving the app ----------------------------------------------------------------------------------


async def settle(pilot: Pilot[None]) -> None:
    """Let the database workers finish and the screen catch up with what they posted."""
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def until_screen(pilot: Pilot[None], kind: type[Screen[object]]) -> None:
    waited = 0.0
    while not isinstance(pilot.app.screen, kind):
        assert waited < SETTLE_TIMEOUT, f"{kind.__name__} never appeared: {pilot.app.screen}"
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.05)
        waited += 0.05
    await settle(pilot)


async def steady_cursor(pilot: Pilot[None]) -> None:
    """No blink: the text cursor is drawn in every snapshot, whenever it is taken."""
    for screen in pilot.app.screen_stack:
        for field in screen.query(Input):
            field.cursor_blink = False
    await pilot.pause()


def flow(*steps: Flow) -> Flow:
    """Run steps in order, then settle and stop the cursor blinking."""

    async def run(pilot: Pilot[None]) -> None:
        for step in steps:
            await step(pilot)
        await settle(pilot)
        await steady_cursor(pilot)

    return run


async def login_screen(pilot: Pilot[None]) -> None:
    await until_screen(pilot, LoginScreen)


async def type_text(pilot: Pilot[None], text: str) -> None:
    await pilot.press(*text)


def log_in_as(username: str) -> Flow:
    """Username, Enter, password, Enter — as a person does."""

    async def run(pilot: Pilot[None]) -> None:
        await login_screen(pilot)
        await type_text(pilot, username)
        await pilot.press("enter")
        await type_text(pilot, PASSWORD)
        await pilot.press("enter")
        await settle(pilot)

    return run


async def signed_in_admin(pilot: Pilot[None]) -> None:
    """The admin's session, as after a login (the password check itself is covered above)."""
    await login_screen(pilot)
    app = pilot.app
    assert isinstance(app, MfaTuiApp)
    user = UserService(app.ctx).get("admin")
    # Textual's Header updates its title in a callback that fails when its screen is removed
    # meanwhile, and start_session sets the sub-title just before switching screens: let the
    # headers take the sub-title first, so these snapshots do not fail on that race.
    app.sub_title = f"{user.username} ({user.role})"
    await pilot.pause()
    app.start_session(user, "password")
    await until_screen(pilot, UsersScreen)


async def find_user(pilot: Pilot[None], user: tuple[str, str]) -> None:
    """In Administration – Users: "/", the search text, Enter: the one match is selected."""
    search, username = user
    await pilot.press("slash")
    await type_text(pilot, search)
    await pilot.press("enter")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, UsersScreen)
    selected = screen.table.selected_user
    assert selected is not None and selected.username == username


def open_user(user: tuple[str, str]) -> Flow:
    """From Administration – Users: find the user, Enter to edit."""

    async def run(pilot: Pilot[None]) -> None:
        await signed_in_admin(pilot)
        await find_user(pilot, user)
        await pilot.press("enter")
        await until_screen(pilot, UserEditScreen)
        screen = pilot.app.screen
        assert isinstance(screen, UserEditScreen) and screen.user is not None
        assert screen.user.username == user[1]

    return run


async def configure_now(pilot: Pilot[None]) -> None:
    """In User edit of a user without MFA: Type Authenticator, then the Configure now button."""
    screen = pilot.app.screen
    assert isinstance(screen, UserEditScreen)
    # Tab order is proven by tests/e2e/test_tmux_qr.py; here focusing saves seven redraws.
    screen.query_one("#mfa-type").focus()
    await pilot.press("enter", "down", "enter")  # open the Type list, next entry, choose it
    assert screen.chosen_type == MfaType.TOTP and not screen.configure_later
    await pilot.press("tab", "tab")  # past Configure later by user, to Configure now
    assert pilot.app.focused is screen.query_one("#configure-now")
    await pilot.press("enter")
    await settle(pilot)
    assert screen.credential_id is not None


async def focus_configure_later(pilot: Pilot[None]) -> None:
    screen = pilot.app.screen
    assert isinstance(screen, UserEditScreen)
    screen.query_one("#configure-later").focus()
    await pilot.pause()


async def back_from_full_qr(pilot: Pilot[None]) -> None:
    if isinstance(pilot.app.screen, QrFullScreen):
        await pilot.press("escape")
    await until_screen(pilot, UserEditScreen)


async def full_qr(pilot: Pilot[None]) -> None:
    if not isinstance(pilot.app.screen, QrFullScreen):
        await pilot.press("f2")
    await until_screen(pilot, QrFullScreen)


def press(*keys: str) -> Flow:
    async def run(pilot: Pilot[None]) -> None:
        await pilot.press(*keys)
        await settle(pilot)

    return run


def expect(kind: type[Screen[object]]) -> Flow:
    async def run(pilot: Pilot[None]) -> None:
        await until_screen(pilot, kind)

    return run


# The screens --------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_first_run(snap_compare, app_on, size: tuple[int, int]) -> None:
    assert snap_compare(app_on(False), terminal_size=size, run_before=flow(expect(FirstRunScreen)))


@pytest.mark.parametrize("size", SIZES)
def test_login(snap_compare, app_on, size: tuple[int, int]) -> None:
    assert snap_compare(app_on(), terminal_size=size, run_before=flow(login_screen))


@pytest.mark.parametrize("size", SIZES)
def test_second_factor_prompt(snap_compare, app_on, size: tuple[int, int]) -> None:
    assert snap_compare(
        app_on(),
        terminal_size=size,
        run_before=flow(log_in_as("carol"), expect(SecondFactorScreen)),
    )


@pytest.mark.parametrize("size", SIZES)
def test_enrollment_at_login(snap_compare, app_on, size: tuple[int, int]) -> None:
    """alice's Authenticator is pending: after her password she must set it up first."""
    assert snap_compare(
        app_on(),
        terminal_size=size,
        run_before=flow(log_in_as("alice"), expect(EnrollmentScreen)),
    )


@pytest.mark.parametrize("size", SIZES)
def test_users(snap_compare, app_on, size: tuple[int, int]) -> None:
    assert snap_compare(app_on(), terminal_size=size, run_before=flow(signed_in_admin))


@pytest.mark.parametrize("size", SIZES)
def test_user_edit_configure_later(snap_compare, app_on, size: tuple[int, int]) -> None:
    """General, and Multifactor with Type Authenticator and Configure later by user checked."""
    assert snap_compare(
        app_on(),
        terminal_size=size,
        run_before=flow(open_user(PENDING_USER), focus_configure_later),
    )


@pytest.mark.parametrize("size", SIZES)
def test_user_edit_configure_now_full_screen_qr(
    snap_compare, app_on, size: tuple[int, int]
) -> None:
    assert snap_compare(
        app_on(),
        terminal_size=size,
        run_before=flow(open_user(PLAIN_USER), configure_now, full_qr),
    )


@pytest.mark.parametrize("size", SIZES)
def test_user_edit_configure_now_panel(snap_compare, app_on, size: tuple[int, int]) -> None:
    """The configure-now steps in the form: QR code, secret, code from the app, Validate."""
    assert snap_compare(
        app_on(),
        terminal_size=size,
        run_before=flow(open_user(PLAIN_USER), configure_now, back_from_full_qr),
    )


@pytest.mark.parametrize("size", SIZES)
def test_confirm_delete(snap_compare, app_on, size: tuple[int, int]) -> None:
    async def select_then_delete(pilot: Pilot[None]) -> None:
        await find_user(pilot, PLAIN_USER)
        await pilot.press("delete")

    assert snap_compare(
        app_on(),
        terminal_size=size,
        run_before=flow(signed_in_admin, select_then_delete, expect(ConfirmScreen)),
    )


@pytest.mark.parametrize("size", SIZES)
def test_logs(snap_compare, app_on, size: tuple[int, int]) -> None:
    assert snap_compare(
        app_on(),
        terminal_size=size,
        run_before=flow(signed_in_admin, press("l"), expect(AuditLogScreen)),
    )


@pytest.mark.parametrize("size", SIZES)
def test_preferences(snap_compare, app_on, size: tuple[int, int]) -> None:
    assert snap_compare(
        app_on(),
        terminal_size=size,
        run_before=flow(signed_in_admin, press("p"), expect(PreferencesScreen)),
    )
