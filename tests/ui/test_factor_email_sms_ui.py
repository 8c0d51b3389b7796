"""Email and SMS through the real screens: configure now in User edit, first-login enrollment,
login, the Server Settings "Test" action, and a delivery failure (clear message, nobody locked,
the screen still usable). Codes are read from what a real SMTP server (aiosmtpd) and a local
Twilio-API gateway received, as the user would read them from their mailbox or phone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Checkbox, Select

from mfa_tui.core.access import Actor
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.models import MfaStatus
from mfa_tui.core.services.mfa import FACTOR_METHODS, MfaService
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import UserView
from tests.helpers.smtp_server import SmtpServer
from tests.helpers.twilio_standin import TwilioStandin, twilio_standin
from tests.ui.conftest import (
    ADMIN,
    ADMIN_PASSWORD,
    PASSWORD,
    add_user,
    admin_console,
    click,
    console,
    credentials,
    enroll_totp,
    enter_code,
    fill,
    lockout_row,
    log_in,
    on_screen,
    screen_name,
    search_and_open,
    shown,
    static_text,
    user_row,
    wait_until,
)

# Screens are the same on both engines (the core tests cover PostgreSQL): SQLite keeps these fast.
pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
ALICE = "alice@example.com"
NUMBER = "+14155550123"


@pytest.fixture
def gateway() -> Iterator[TwilioStandin]:
    with twilio_standin() as standin:
        yield standin


@pytest.fixture
def delivery(ctx: Context, smtp: SmtpServer, gateway: TwilioStandin) -> None:
    SettingsStore(ctx).set_many(
        Actor.cli(),
        {"mfa.supported": "totp,email,sms", **smtp.settings(), **gateway.settings()},
    )


async def choose_type(pilot: Pilot[Any], value: str) -> None:
    """Open the Type dropdown with the keyboard and move to ``value``'s line, then Enter."""
    select = pilot.app.screen.query_one("#mfa-type", Select)
    values = [option_value for _, option_value in select._options]
    select.focus()
    await pilot.press("enter")
    steps = values.index(value) - values.index(select.value)
    await pilot.press(*(["down"] * steps if steps > 0 else ["up"] * -steps), "enter")
    await wait_until(pilot, lambda: not select.expanded, "the Type list to close")
    assert select.value == value, shown(pilot)


async def configure_now(pilot: Pilot[Any], mfa_type: str, read_code: Any) -> None:
    """User edit → Type → Configure now → the code that arrived → Validate → Update."""
    await choose_type(pilot, mfa_type)
    await click(pilot, "#configure-now")
    await wait_until(
        pilot,
        lambda: "code was sent" in static_text(pilot, "#enrollment-instructions"),
        "the code to be sent",
    )
    await fill(pilot, "#enrollment-code", read_code())
    await click(pilot, "#validate")
    await wait_until(
        pilot,
        lambda: "Code verified" in static_text(pilot, "#enrollment-status"),
        "the code to be verified",
    )
    await click(pilot, "#update")
    await on_screen(pilot, "UsersScreen")


def enroll(ctx: Context, name: str, mfa_type: str, read_code: Any) -> None:
    service = MfaService(ctx)
    start = service.begin_enrollment(Actor.cli(), name, mfa_type)
    assert service.confirm_code(Actor.cli(), start.credential_id, read_code())
    service.activate(Actor.cli(), name, start.credential_id)


async def test_configure_email_now_in_user_edit_then_log_in_with_an_emailed_code(
    ctx: Context, clock: FixedClock, admin: UserView, delivery: None, smtp: SmtpServer
) -> None:
    add_user(ctx, "alice", email=ALICE)
    async with admin_console(ctx, clock) as pilot:
        await search_and_open(pilot, "alice")
        await configure_now(pilot, "email", lambda: smtp.last_code_to(ALICE))
    alice = user_row(ctx, "alice")
    assert alice is not None and (alice.mfa_type, alice.mfa_status) == ("email", "configured")
    assert credentials(ctx, "alice") == [("email", "active")]

    clock.advance(seconds=61)
    async with console(ctx, clock) as pilot:
        await log_in(pilot, "alice", PASSWORD)
        await on_screen(pilot, "SecondFactorScreen")
        await wait_until(
            pilot,
            lambda: "sent to al…@example.com" in static_text(pilot, "#second-factor-message"),
            "the code to be sent",
        )
        assert len(smtp.messages) == 2
        await enter_code(pilot, smtp.last_code_to(ALICE))
        await on_screen(pilot, "PreferencesScreen")


@pytest.mark.parametrize("mfa_type", ["email", "sms"])
async def test_first_login_enrollment(
    ctx: Context,
    clock: FixedClock,
    delivery: None,
    smtp: SmtpServer,
    gateway: TwilioStandin,
    mfa_type: str,
) -> None:
    add_user(ctx, "dora", email="dora@example.com", phone=NUMBER)
    MfaService(ctx).set_type(Actor.cli(), "dora", mfa_type, configure_later=True)
    read_code = {
        "email": lambda: smtp.last_code_to("dora@example.com"),
        "sms": lambda: gateway.last_code_to(NUMBER),
    }[mfa_type]
    async with console(ctx, clock) as pilot:
        await log_in(pilot, "dora", PASSWORD)
        await on_screen(pilot, "EnrollmentScreen")
        await click(pilot, "#continue")
        await wait_until(
            pilot,
            lambda: "code was sent" in static_text(pilot, "#enrollment-instructions"),
            "the code to be sent",
        )
        await fill(pilot, "#enrollment-code", read_code())
        await pilot.press("enter")
        await on_screen(pilot, "BackupCodesScreen")
        await click(pilot, "#saved")
        await on_screen(pilot, "PreferencesScreen")
    dora = user_row(ctx, "dora")
    assert dora is not None and (dora.mfa_type, dora.mfa_status) == (mfa_type, "configured")
    assert credentials(ctx, "dora") == [(mfa_type, "active")]


async def test_log_in_with_an_sms_code_wrong_then_right(
    ctx: Context, clock: FixedClock, delivery: None, gateway: TwilioStandin
) -> None:
    add_user(ctx, "carol", phone=NUMBER)
    enroll(ctx, "carol", "sms", lambda: gateway.last_code_to(NUMBER))
    clock.advance(seconds=61)
    async with console(ctx, clock) as pilot:
        await log_in(pilot, "carol", PASSWORD)
        await on_screen(pilot, "SecondFactorScreen")
        await wait_until(
            pilot,
            lambda: "sent to +1…0123" in static_text(pilot, "#second-factor-message"),
            "the code to be sent",
        )
        code = gateway.last_code_to(NUMBER)
        await enter_code(pilot, f"{(int(code) + 1) % 10**6:06d}")
        assert static_text(pilot, "#second-factor-message") == "The code was not accepted."
        await enter_code(pilot, code)
        await on_screen(pilot, "PreferencesScreen")


async def test_smtp_down_at_login_says_so_locks_nobody_and_the_prompt_still_works(
    ctx: Context, clock: FixedClock, delivery: None, smtp: SmtpServer, refused_port: int
) -> None:
    add_user(ctx, "alice", email=ALICE)
    enroll(ctx, "alice", "email", lambda: smtp.last_code_to(ALICE))
    port = refused_port
    SettingsStore(ctx).set_many(Actor.cli(), {"smtp.port": str(port)})
    clock.advance(seconds=61)
    async with console(ctx, clock) as pilot:
        await log_in(pilot, "alice", PASSWORD)
        await on_screen(pilot, "SecondFactorScreen")
        expected = (
            f"Could not reach the SMTP server at 127.0.0.1:{port} (connection refused); "
            "check smtp.host and smtp.port."
        )
        await wait_until(
            pilot,
            lambda: static_text(pilot, "#second-factor-message") == expected,
            "the failure to be shown",
        )
        assert not pilot.app.screen.query_one("#verify", Button).disabled
        await pilot.press("escape")  # back to the login screen, and in again once SMTP is back
        await on_screen(pilot, "LoginScreen")
        SettingsStore(ctx).set_many(Actor.cli(), {"smtp.port": str(smtp.port)})
        await log_in(pilot, "alice", PASSWORD)
        await on_screen(pilot, "SecondFactorScreen")
        await wait_until(pilot, lambda: len(smtp.messages) == 2, "the code to be sent")
        await enter_code(pilot, smtp.last_code_to(ALICE))
        await on_screen(pilot, "PreferencesScreen")
    lock = lockout_row(ctx, "alice")
    assert lock is None or (lock.failed_attempts, lock.locked_at) == (0, None)


async def test_configure_sms_now_in_user_edit_after_a_gateway_failure(
    ctx: Context, clock: FixedClock, admin: UserView, delivery: None, gateway: TwilioStandin
) -> None:
    add_user(ctx, "carol", phone=NUMBER)
    gateway.fail_with = 500
    async with admin_console(ctx, clock) as pilot:
        await search_and_open(pilot, "carol")
        await choose_type(pilot, "sms")
        await click(pilot, "#configure-now")
        await wait_until(
            pilot,
            lambda: "failed (HTTP 500" in static_text(pilot, "#edit-message"),
            "the failure to be shown",
        )
        assert credentials(ctx, "carol") == []  # nothing half-done
        assert screen_name(pilot) == "UserEditScreen"
        gateway.fail_with = None
        await configure_now(pilot, "sms", lambda: gateway.last_code_to(NUMBER))
    carol = user_row(ctx, "carol")
    assert carol is not None and (carol.mfa_type, carol.mfa_status) == ("sms", MfaStatus.CONFIGURED)
    assert credentials(ctx, "carol") == [("sms", "active")]


async def test_server_settings_test_buttons_send_to_the_administrator(
    ctx: Context,
    clock: FixedClock,
    delivery: None,
    smtp: SmtpServer,
    gateway: TwilioStandin,
) -> None:
    add_user(ctx, "boss", role="admin", email="boss@example.com", phone=NUMBER)
    async with console(ctx, clock, (110, 40)) as pilot:
        await log_in(pilot, "boss", PASSWORD)
        await on_screen(pilot, "UsersScreen")
        await pilot.press("s")
        await on_screen(pilot, "ServerSettingsScreen")
        await click(pilot, "#test-smtp")
        await wait_until(
            pilot,
            lambda: (
                "test email was sent to boss@example.com" in static_text(pilot, "#settings-message")
            ),
            "the test email",
        )
        assert smtp.wait_for(1)[0].recipients == ["boss@example.com"]
        await click(pilot, "#test-sms")
        await wait_until(
            pilot,
            lambda: (
                f"test text message was sent to {NUMBER}" in static_text(pilot, "#settings-message")
            ),
            "the test text message",
        )
        assert [sms.to for sms in gateway.messages] == [NUMBER]


async def test_email_me_a_code_logs_in_a_totp_user_and_is_offered_only_when_on(
    ctx: Context, clock: FixedClock, admin: UserView, smtp: SmtpServer
) -> None:
    SettingsStore(ctx).set_many(Actor.cli(), smtp.settings())
    add_user(ctx, "alice", email=ALICE)
    enroll_totp(ctx, clock, "alice")
    async with console(ctx, clock) as pilot:
        await log_in(pilot, "alice", PASSWORD)
        await on_screen(pilot, "SecondFactorScreen")
        assert not pilot.app.screen.query_one("#email-code", Button).display  # off by default
        await pilot.press("escape")
        await on_screen(pilot, "LoginScreen")

        # The administrator turns it on in Server Settings – Multi-factor.
        await log_in(pilot, ADMIN, ADMIN_PASSWORD)
        await on_screen(pilot, "UsersScreen")
        await pilot.press("s")
        await on_screen(pilot, "ServerSettingsScreen")
        pilot.app.screen.query_one("#alternate-email", Checkbox).value = True
        await pilot.press("ctrl+s")
        await wait_until(
            pilot,
            lambda: static_text(pilot, "#settings-message") == "Settings saved.",
            "the settings to be saved",
        )
    assert SettingsStore(ctx).load()["alternate.email"] is True

    async with console(ctx, clock) as pilot:
        await log_in(pilot, "alice", PASSWORD)
        await on_screen(pilot, "SecondFactorScreen")
        await click(pilot, "#email-code")
        await wait_until(
            pilot,
            lambda: "sent to al…@example.com" in static_text(pilot, "#second-factor-message"),
            "the code to be sent",
        )
        assert static_text(pilot, "#code-prompt") == "Enter the code sent to your email address."
        await enter_code(pilot, smtp.last_code_to(ALICE))
        await on_screen(pilot, "PreferencesScreen")
    assert credentials(ctx, "alice") == [("totp", "active")]  # the factor itself is unchanged


async def test_an_emailed_code_signs_in_but_never_proves_the_factor(
    ctx: Context, clock: FixedClock, smtp: SmtpServer
) -> None:
    """Step-up and the way into a new enrollment need the working factor, not the mailbox."""
    SettingsStore(ctx).set_many(Actor.cli(), {**smtp.settings(), "alternate.email": "true"})
    add_user(ctx, "alice", email=ALICE)
    enroll_totp(ctx, clock, "alice")
    async with console(ctx, clock) as pilot:
        await log_in(pilot, "alice", PASSWORD)
        await on_screen(pilot, "SecondFactorScreen")
        await click(pilot, "#email-code")
        await wait_until(pilot, lambda: len(smtp.messages) == 1, "the code to be sent")
        await enter_code(pilot, smtp.last_code_to(ALICE))
        await on_screen(pilot, "PreferencesScreen")
        clock.advance(minutes=6)  # the login's proof is too old for a change
        await click(pilot, "#reconfigure")
        await on_screen(pilot, "StepUpScreen")
        step_up = pilot.app.screen
        assert not step_up.query_one("#email-code", Button).display
        assert not step_up.query_one("#access-pass", Button).display
    # The core refuses it too, whatever screen asks.
    service = MfaService(ctx)
    clock.advance(seconds=61)
    service.send_email_code("alice")
    code = smtp.wait_for(2)[1].code
    assert service.verify("alice", code, methods=FACTOR_METHODS).reason == "wrong_code"

    # A new factor set up later by staff ("configure later") asks for the current one first.
    MfaService(ctx).set_type(Actor.cli(), "alice", "totp", configure_later=True)
    clock.advance(seconds=61)
    async with console(ctx, clock) as pilot:
        await log_in(pilot, "alice", PASSWORD)
        await on_screen(pilot, "SecondFactorScreen")
        await click(pilot, "#email-code")
        await wait_until(pilot, lambda: len(smtp.messages) == 3, "the code to be sent")
        await enter_code(pilot, smtp.last_code_to(ALICE))
        assert screen_name(pilot) == "SecondFactorScreen"
        assert "enter a code from your current one" in static_text(pilot, "#second-factor-message")
