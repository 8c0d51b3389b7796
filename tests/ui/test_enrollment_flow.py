"""First-login enrollment and the login decisions of the MFA policy, driven through real screens.

Every test runs the console (``MfaTuiApp``) with Pilot on SQLite and on PostgreSQL, reads the QR
code from the screen with zbar, computes codes with pyotp at the frozen clock's time, and checks
the database afterwards. The helpers at the top are shared by the other screen tests of issue 4
(``test_preferences``, ``test_server_settings``, ``test_reset_request_flow``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import func
from sqlmodel import col, select
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Input, Static

from mfa_tui.core import passwords
from mfa_tui.core.access import Actor
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.models import BackupCode, CredentialState, MfaCredential, User
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import UserService
from mfa_tui.ui.app import MfaTuiApp
from mfa_tui.ui.screens.backup_codes import BackupCodesScreen
from mfa_tui.ui.screens.enrollment import EnrollmentScreen
from mfa_tui.ui.screens.login import LoginScreen
from mfa_tui.ui.screens.preferences import PreferencesScreen
from mfa_tui.ui.screens.qr_full import QrFullScreen
from mfa_tui.ui.screens.second_factor import SecondFactorScreen
from tests.helpers.qr_decode import decode_qr_text, screen_text

PASSWORD = "Correct-Horse-Battery-9"
SMALL = (80, 24)  # the size the spec promises; the QR code is shown full screen there
WIDE = (110, 32)  # staff screens: every column of the users table is readable
S = TypeVar("S", bound=Screen[Any])


# Shared helpers -----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Still argon2id, at the smallest cost: these tests are about the screens, not the hash."""
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(passwords, "hasher", lambda: cheap)


def add_user(ctx: Context, name: str, *, role: str = "user", mfa_type: str = "none") -> None:
    """A user with a password; a type other than none is "Configure later by user" (pending)."""
    UserService(ctx).create(Actor.cli(), name, role=role, password=PASSWORD, mfa_type=mfa_type)


def configure_totp(ctx: Context, clock: FixedClock, name: str) -> pyotp.TOTP:
    """Give ``name`` a working authenticator (as staff configuring now) and move to the next step.

    The clock moves on 30 s so the next code the test computes is not the one just used up.
    """
    service = MfaService(ctx)
    start = service.begin_enrollment(Actor.cli(), name, "totp")
    assert start.provisioning_uri is not None
    totp = pyotp.parse_uri(start.provisioning_uri)
    assert service.confirm_code(Actor.cli(), start.credential_id, totp.at(clock.now()))
    service.activate(Actor.cli(), name, start.credential_id)
    clock.advance(seconds=30)
    return totp


def set_settings(ctx: Context, **values: str) -> None:
    """``set_settings(ctx, mfa_usage="required")`` sets ``mfa.usage`` (underscore for the dot)."""
    SettingsStore(ctx).set_many(
        Actor.cli(), {key.replace("_", ".", 1): value for key, value in values.items()}
    )


def wrong_code(totp: pyotp.TOTP, clock: FixedClock) -> str:
    """Six digits that match no time-step in the drift window around the clock's time."""
    near = {totp.at(clock.now().timestamp() + 30 * shift) for shift in range(-2, 3)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in near)


async def until(
    pilot: Pilot[Any], condition: Callable[[], object], what: str, timeout: float = 15.0
) -> None:
    """Let the app run (its workers are threads) until ``condition`` holds; fail with the screen.

    A plain sleep lets the app (same event loop) run; the delay doubles up to 80 ms so a
    condition that reads the database or renders the screen does not compete with the app.
    """
    deadline = time.monotonic() + timeout
    delay = 0.005
    while not condition():
        if time.monotonic() > deadline:
            shown = "\n".join(screen_text(pilot.app))
            raise AssertionError(f"timed out waiting for {what}; the screen shows:\n{shown}")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.08)


async def on_screen(pilot: Pilot[Any], screen_type: type[S]) -> S:
    """Wait until the active screen is exactly ``screen_type`` (not a subclass) and return it."""
    await until(
        pilot,
        lambda: type(pilot.app.screen) is screen_type and pilot.app.screen.is_mounted,
        screen_type.__name__,
    )
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, screen_type)
    return screen


def text_of(screen: Screen[Any], selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


def shows(pilot: Pilot[Any], text: str) -> bool:
    """Whether ``text`` is on the terminal, on one row."""
    return any(text in row for row in screen_text(pilot.app))


async def log_in(pilot: Pilot[Any], name: str, password: str = PASSWORD) -> None:
    screen = await on_screen(pilot, LoginScreen)
    await until(pilot, lambda: not screen.query_one("#log-in").disabled, "the Log in button")
    screen.query_one("#username", Input).value = name
    screen.query_one("#password", Input).value = password
    await pilot.click("#log-in")


async def enter_code(pilot: Pilot[Any], code: str) -> None:
    """Put a code in the focused field and press Enter (one key press per character costs a
    screen refresh each; the terminal test in tests/e2e types them for real)."""
    field = pilot.app.focused
    assert isinstance(field, Input), f"the focus is on {field!r}, not on a code field"
    field.value = code
    await pilot.press("enter")


async def scan_qr(pilot: Pilot[Any]) -> pyotp.TOTP:
    """At 80×24 the code is shown alone: read it from the screen with zbar, then go back."""
    await on_screen(pilot, QrFullScreen)
    uris = decode_qr_text(screen_text(pilot.app))
    assert len(uris) == 1 and uris[0].startswith("otpauth://totp/"), uris
    await pilot.press("escape")
    await on_screen(pilot, EnrollmentScreen)
    # Back from the QR code, the field to type the code in is in view (and has the focus).
    await until(pilot, lambda: shows(pilot, "Code from the app"), "the code field in view")
    assert isinstance(pilot.app.focused, Input) and pilot.app.focused.id == "enrollment-code"
    return pyotp.parse_uri(uris[0])


async def log_out(pilot: Pilot[Any]) -> None:
    """The "x" key, which every signed-in home screen binds to Log out."""
    await pilot.press("x")
    await on_screen(pilot, LoginScreen)


def stored_user(ctx: Context, name: str) -> User:
    with ctx.db.read() as session:
        user = session.exec(select(User).where(User.username_key == name)).one()
        session.expunge(user)
        return user


def credential_states(ctx: Context, name: str) -> list[str]:
    with ctx.db.read() as session:
        user = session.exec(select(User).where(User.username_key == name)).one()
        rows = session.exec(select(MfaCredential).where(MfaCredential.user_id == user.id)).all()
        return sorted(row.state for row in rows)


def active_credential_id(ctx: Context, name: str) -> str | None:
    with ctx.db.read() as session:
        user = session.exec(select(User).where(User.username_key == name)).one()
        return session.exec(
            select(MfaCredential.id).where(
                MfaCredential.user_id == user.id, MfaCredential.state == CredentialState.ACTIVE
            )
        ).one_or_none()


def unused_backup_codes(ctx: Context, name: str) -> int:
    with ctx.db.read() as session:
        user = session.exec(select(User).where(User.username_key == name)).one()
        return session.exec(
            select(func.count())
            .select_from(BackupCode)
            .where(BackupCode.user_id == user.id, col(BackupCode.used_at).is_(None))
        ).one()


def shown_backup_codes(screen: BackupCodesScreen) -> list[str]:
    return text_of(screen, "#backup-codes").split()


# Point 1: the first login of a "Configure later by user" user --------------------------------------


async def test_first_login_enrolls_shows_backup_codes_then_asks_for_a_code(
    ctx: Context, clock: FixedClock
) -> None:
    add_user(ctx, "alice")
    MfaService(ctx).set_type(Actor.cli(), "alice", "totp", configure_later=True)
    app = MfaTuiApp(context=ctx, clock=clock)
    async with app.run_test(size=SMALL) as pilot:
        await log_in(pilot, "alice")
        enrollment = await on_screen(pilot, EnrollmentScreen)
        assert "your account needs Authenticator (TOTP)" in text_of(enrollment, "#explain")
        assert credential_states(ctx, "alice") == []  # nothing is created before Continue

        await pilot.click("#continue")
        totp = await scan_qr(pilot)
        assert (totp.issuer, totp.name) == ("mfa-tui", "alice")
        assert credential_states(ctx, "alice") == ["verifying"]

        await enter_code(pilot, wrong_code(totp, clock))
        await until(
            pilot, lambda: "not right" in text_of(enrollment, "#enrollment-status"), "a refusal"
        )
        assert credential_states(ctx, "alice") == ["verifying"]
        assert stored_user(ctx, "alice").mfa_status == "pending"

        await enter_code(pilot, totp.at(clock.now()))
        codes_screen = await on_screen(pilot, BackupCodesScreen)
        codes = shown_backup_codes(codes_screen)
        assert len(codes) == 10 and len(set(codes)) == 10
        await pilot.click("#saved")
        await on_screen(pilot, PreferencesScreen)
        assert app.signed_in is not None and app.signed_in.user.username == "alice"

        user = stored_user(ctx, "alice")
        assert (user.mfa_type, user.mfa_status) == ("totp", "configured")
        assert credential_states(ctx, "alice") == ["active"]
        assert unused_backup_codes(ctx, "alice") == 10

        # The second login asks for a code from the app just set up, and nothing else.
        await log_out(pilot)
        clock.advance(seconds=30)
        await log_in(pilot, "alice")
        prompt = await on_screen(pilot, SecondFactorScreen)
        assert prompt.mfa_type == "totp"
        await enter_code(pilot, totp.at(clock.now()))
        await on_screen(pilot, PreferencesScreen)
        assert unused_backup_codes(ctx, "alice") == 10


async def test_leaving_enrollment_by_log_out_escape_or_quitting_starts_it_again_next_time(
    ctx: Context, clock: FixedClock
) -> None:
    add_user(ctx, "alice", mfa_type="totp")
    app = MfaTuiApp(context=ctx, clock=clock)
    async with app.run_test(size=SMALL) as pilot:
        # Leave with the Log out button after the QR code was shown (scrolled back into view).
        await log_in(pilot, "alice")
        enrollment = await on_screen(pilot, EnrollmentScreen)
        await pilot.click("#continue")
        await scan_qr(pilot)
        assert credential_states(ctx, "alice") == ["verifying"]
        enrollment.query_one("#leave").scroll_visible(animate=False)
        await pilot.pause()
        await pilot.click("#leave")
        login = await on_screen(pilot, LoginScreen)
        assert "starts again at your next login" in text_of(login, "#login-message")
        assert app.signed_in is None
        assert credential_states(ctx, "alice") == []
        assert stored_user(ctx, "alice").mfa_status == "pending"

        # Leave with Escape.
        await log_in(pilot, "alice")
        await on_screen(pilot, EnrollmentScreen)
        await pilot.click("#continue")
        await scan_qr(pilot)
        await pilot.press("escape")
        await on_screen(pilot, LoginScreen)
        assert app.signed_in is None
        assert credential_states(ctx, "alice") == []
        assert stored_user(ctx, "alice").mfa_status == "pending"

        # Quit the app while the QR code is up.
        await log_in(pilot, "alice")
        await on_screen(pilot, EnrollmentScreen)
        await pilot.click("#continue")
        abandoned = await scan_qr(pilot)
    # Gone without a word: the unproven secret stays unproven and never logs anyone in.
    assert stored_user(ctx, "alice").mfa_status == "pending"
    assert credential_states(ctx, "alice") == ["verifying"]
    assert not MfaService(ctx).verify("alice", abandoned.at(clock.now())).accepted

    app = MfaTuiApp(context=ctx, clock=clock)
    async with app.run_test(size=SMALL) as pilot:
        await log_in(pilot, "alice")
        await on_screen(pilot, EnrollmentScreen)  # the next login starts it again
        assert app.signed_in is None


# Point 2: what the policy asks at login -----------------------------------------------------------


async def test_usage_required_skipped_and_optional_decide_who_is_asked(
    ctx: Context, clock: FixedClock
) -> None:
    add_user(ctx, "nora")  # Type None
    add_user(ctx, "tom")
    tom = configure_totp(ctx, clock, "tom")
    app = MfaTuiApp(context=ctx, clock=clock)
    async with app.run_test(size=SMALL) as pilot:
        # Optional per user (the default): only a user with a type is asked.
        await log_in(pilot, "nora")
        await on_screen(pilot, PreferencesScreen)
        await log_out(pilot)
        await log_in(pilot, "tom")
        await on_screen(pilot, SecondFactorScreen)
        await enter_code(pilot, tom.at(clock.now()))
        await on_screen(pilot, PreferencesScreen)
        await log_out(pilot)

        # Skipped: nobody is asked, not even a user with a working authenticator.
        set_settings(ctx, mfa_usage="skipped")
        await log_in(pilot, "tom")
        await on_screen(pilot, PreferencesScreen)
        await log_out(pilot)

        # Required with Default = Authenticator: a user with Type None must enroll now.
        set_settings(ctx, mfa_usage="required", mfa_default_type="totp")
        await log_in(pilot, "nora")
        enrollment = await on_screen(pilot, EnrollmentScreen)
        assert enrollment.mfa_type == "totp" and app.signed_in is None


async def test_pending_expires_and_staff_renew_it(ctx: Context, clock: FixedClock) -> None:
    add_user(ctx, "pat", mfa_type="totp")
    set_settings(ctx, mfa_pending_expiry_days="3")
    clock.advance(days=3)
    app = MfaTuiApp(context=ctx, clock=clock)
    async with app.run_test(size=SMALL) as pilot:
        await log_in(pilot, "pat")
        login = await on_screen(pilot, LoginScreen)
        await until(pilot, lambda: "expired" in text_of(login, "#login-message"), "the refusal")
        assert "ask the helpdesk to renew it" in text_of(login, "#login-message")
        assert app.signed_in is None and credential_states(ctx, "pat") == []

        MfaService(ctx).set_type(Actor.cli(), "pat", "totp", configure_later=True)
        await log_in(pilot, "pat")
        await on_screen(pilot, EnrollmentScreen)


async def test_pending_user_with_a_working_factor_proves_it_before_enrolling_again(
    ctx: Context, clock: FixedClock
) -> None:
    add_user(ctx, "tom")
    old = configure_totp(ctx, clock, "tom")
    old_id = active_credential_id(ctx, "tom")
    MfaService(ctx).set_type(Actor.cli(), "tom", "totp", configure_later=True)
    assert stored_user(ctx, "tom").mfa_status == "pending"
    app = MfaTuiApp(context=ctx, clock=clock)
    async with app.run_test(size=SMALL) as pilot:
        await log_in(pilot, "tom")
        await on_screen(pilot, SecondFactorScreen)  # the password alone does not reach enrollment
        await enter_code(pilot, old.at(clock.now()))
        await on_screen(pilot, EnrollmentScreen)
        await pilot.click("#continue")
        new = await scan_qr(pilot)
        # Mid-change the old factor still works and the new one does not count yet.
        assert credential_states(ctx, "tom") == ["active", "verifying"]
        assert active_credential_id(ctx, "tom") == old_id
        clock.advance(seconds=30)
        assert not MfaService(ctx).verify("tom", new.at(clock.now())).accepted
        assert MfaService(ctx).verify("tom", old.at(clock.now())).accepted

        clock.advance(seconds=30)
        await enter_code(pilot, new.at(clock.now()))
        await on_screen(pilot, BackupCodesScreen)
    assert credential_states(ctx, "tom") == ["active"]
    assert active_credential_id(ctx, "tom") != old_id
    assert stored_user(ctx, "tom").mfa_status == "configured"
    clock.advance(seconds=30)
    assert not MfaService(ctx).verify("tom", old.at(clock.now())).accepted
    assert MfaService(ctx).verify("tom", new.at(clock.now())).accepted
