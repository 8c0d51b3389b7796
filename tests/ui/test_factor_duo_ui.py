"""Duo in the console (Pilot, SQLite) against the local Auth API stand-in: configure
now in User edit (device chosen with "push 2"), first-login enrollment (told to enroll at Duo first,
then a passcode), login with the device list on the prompt, a denied push, Duo down (a clear
sentence, nothing counted, the prompt still usable), and the Server Settings "Test duo" button."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Button

from mfa_tui.core.access import Actor
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.models import MfaStatus
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import UserView
from tests.helpers.duo_standin import DuoStandIn, DuoUser, phone, running_duo
from tests.ui.conftest import (
    PASSWORD,
    add_user,
    admin_console,
    click,
    console,
    credentials,
    enter_code,
    fill,
    lockout_row,
    log_in,
    on_screen,
    search_and_open,
    shown,
    static_text,
    user_row,
    wait_until,
)
from tests.ui.test_user_edit_flow import choose_type

# duo_client builds its TLS context with ssl.PROTOCOL_TLS (still verifying): not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:ssl.PROTOCOL_TLS is deprecated:DeprecationWarning")
IPHONE, ANDROID = "DPIPHONE00000001111", "DPANDROID0000002222"
DEVICES = "1: iOS (XXX-XXX-1111), 2: Android (XXX-XXX-2222)"


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """SQLite only: the screens do not depend on the engine, and the Duo flows run on both
    engines in tests/core/test_factor_duo.py."""
    return sqlite_url


@pytest.fixture
def duo(tmp_path: Path) -> Iterator[DuoStandIn]:
    with running_duo(tmp_path) as server:
        server.users["alice"] = DuoUser(
            devices=[phone(IPHONE, "iOS (XXX-XXX-1111)"), phone(ANDROID, "Android (XXX-XXX-2222)")],
            passcodes={"314159"},
        )
        yield server


@pytest.fixture
def duo_ctx(ctx: Context, duo: DuoStandIn) -> Context:
    SettingsStore(ctx).set_many(Actor.cli(), {**duo.settings(), "mfa.supported": "totp,duo"})
    add_user(ctx, "alice")
    return ctx


def enroll_duo(ctx: Context) -> None:
    mfa = MfaService(ctx)
    start = mfa.begin_enrollment(Actor.cli(), "alice", "duo")
    assert mfa.confirm_code(Actor.cli(), start.credential_id, "push")
    mfa.activate(Actor.cli(), "alice", start.credential_id)


async def test_configure_now_in_user_edit_then_log_in_with_a_push(
    duo_ctx: Context, clock: FixedClock, admin: UserView, duo: DuoStandIn
) -> None:
    async with admin_console(duo_ctx, clock) as pilot:
        await search_and_open(pilot, "alice")
        await choose_type(pilot, "duo")
        await click(pilot, "#configure-now")
        await wait_until(
            pilot,
            lambda: DEVICES in static_text(pilot, "#enrollment-instructions"),
            "the list of Duo devices",
        )
        assert not pilot.app.screen.query_one("#enrollment-qr").display  # no QR for Duo
        assert credentials(duo_ctx, "alice") == [("duo", "verifying")]
        await fill(pilot, "#enrollment-code", "push 2")
        await click(pilot, "#validate")
        await wait_until(
            pilot,
            lambda: "Code verified" in static_text(pilot, "#enrollment-status"),
            "the push to be approved",
        )
        assert duo.calls("/auth/v2/auth")[-1].params["device"] == ANDROID
        await click(pilot, "#update")
        await on_screen(pilot, "UsersScreen")
    alice = user_row(duo_ctx, "alice")
    assert alice is not None
    assert (alice.mfa_type, alice.mfa_status) == ("duo", MfaStatus.CONFIGURED)
    assert credentials(duo_ctx, "alice") == [("duo", "active")]

    async with console(duo_ctx, clock) as pilot:
        await log_in(pilot, "alice", PASSWORD)
        await on_screen(pilot, "SecondFactorScreen")
        assert "Type push for a Duo Push" in static_text(pilot, "#code-prompt")
        await wait_until(
            pilot,
            lambda: DEVICES in static_text(pilot, "#second-factor-message"),
            "the device choice on the prompt",
        )
        await enter_code(pilot, "push")
        await on_screen(pilot, "PreferencesScreen")
    assert duo.calls("/auth/v2/auth")[-1].params["device"] == IPHONE


async def test_first_login_enrollment_waits_for_duo_enrollment(
    duo_ctx: Context, clock: FixedClock, duo: DuoStandIn
) -> None:
    MfaService(duo_ctx).set_type(Actor.cli(), "alice", "duo", configure_later=True)
    duo.users["alice"].result = "enroll"
    async with console(duo_ctx, clock) as pilot:
        await log_in(pilot, "alice", PASSWORD)
        await on_screen(pilot, "EnrollmentScreen")
        await click(pilot, "#continue")
        await wait_until(
            pilot, lambda: "not enrolled with Duo yet" in shown(pilot), "the Duo instructions"
        )
        await fill(pilot, "#enrollment-code", "push")
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: "enroll with Duo first" in static_text(pilot, "#enrollment-message"),
            "the sentence about enrolling at Duo",
        )
        assert duo.calls("/auth/v2/auth") == []
        duo.users["alice"].result = "auth"  # she followed Duo's enrollment link meanwhile
        await fill(pilot, "#enrollment-code", "314159")
        await pilot.press("enter")
        await on_screen(pilot, "BackupCodesScreen")
        await click(pilot, "#saved")
        await on_screen(pilot, "PreferencesScreen")
    alice = user_row(duo_ctx, "alice")
    assert alice is not None
    assert (alice.mfa_type, alice.mfa_status) == ("duo", MfaStatus.CONFIGURED)
    assert duo.calls("/auth/v2/auth")[-1].params["factor"] == "passcode"


async def test_a_denied_push_is_refused_and_counted(
    duo_ctx: Context, clock: FixedClock, duo: DuoStandIn
) -> None:
    enroll_duo(duo_ctx)
    duo.users["alice"].push_answer = "deny"
    async with console(duo_ctx, clock) as pilot:
        await log_in(pilot, "alice", PASSWORD)
        await on_screen(pilot, "SecondFactorScreen")
        await enter_code(pilot, "push")
        assert static_text(pilot, "#second-factor-message") == "The code was not accepted."
        row = lockout_row(duo_ctx, "alice")
        assert row is not None and row.failed_attempts == 1
        duo.users["alice"].push_answer = "allow"
        await enter_code(pilot, "push")
        await on_screen(pilot, "PreferencesScreen")


async def test_duo_down_at_login_is_said_not_counted_and_the_prompt_still_works(
    duo_ctx: Context, clock: FixedClock, duo: DuoStandIn
) -> None:
    enroll_duo(duo_ctx)
    duo.fail_status = 503
    down = f"Duo at {duo.host} answered with an error (HTTP 503); try again later."
    async with console(duo_ctx, clock) as pilot:
        await log_in(pilot, "alice", PASSWORD)
        await on_screen(pilot, "SecondFactorScreen")
        # The device list could not be fetched when the prompt opened: that is said too.
        await wait_until(
            pilot, lambda: static_text(pilot, "#second-factor-message") == down, "the failure"
        )
        attempts = SettingsStore(duo_ctx).load()["lockout.attempts"]
        for _ in range(attempts + 1):
            await enter_code(pilot, "push")
            assert static_text(pilot, "#second-factor-message") == down
            assert "Traceback" not in shown(pilot)
        assert not pilot.app.screen.query_one("#verify", Button).disabled
        row = lockout_row(duo_ctx, "alice")
        assert row is None or (row.failed_attempts == 0 and row.locked_at is None)
        duo.fail_status = None  # Duo is back
        await enter_code(pilot, "push")
        await on_screen(pilot, "PreferencesScreen")


async def test_server_settings_test_button(
    duo_ctx: Context, clock: FixedClock, admin: UserView, duo: DuoStandIn
) -> None:
    async with admin_console(duo_ctx, clock) as pilot:
        await pilot.press("s")
        await on_screen(pilot, "ServerSettingsScreen")
        await click(pilot, "#test-duo")
        await wait_until(
            pilot,
            lambda: "accepted the integration key" in static_text(pilot, "#settings-message"),
            "the test result",
        )
        SettingsStore(duo_ctx).set_many(Actor.cli(), {"duo.secret_key": "a-wrong-secret-key"})
        await click(pilot, "#test-duo")
        await wait_until(
            pilot,
            lambda: "refused the request's signature" in static_text(pilot, "#settings-message"),
            "the refusal",
        )
    assert [request.signed for request in duo.calls("/auth/v2/check")] == [True, False]


async def test_duo_down_at_configure_now_says_so_and_configure_now_can_be_pressed_again(
    duo_ctx: Context, clock: FixedClock, admin: UserView, duo: DuoStandIn
) -> None:
    duo.fail_status = 500
    async with admin_console(duo_ctx, clock) as pilot:
        await search_and_open(pilot, "alice")
        await choose_type(pilot, "duo")
        await click(pilot, "#configure-now")
        await wait_until(
            pilot, lambda: "answered with an error (HTTP 500)" in shown(pilot), "the failure"
        )
        assert not pilot.app.screen.query_one("#configure-now", Button).disabled
        duo.fail_status = None
        await click(pilot, "#configure-now")
        await wait_until(
            pilot,
            lambda: DEVICES in static_text(pilot, "#enrollment-instructions"),
            "the list of Duo devices",
        )


async def test_duo_down_at_first_login_enrollment_can_be_retried(
    duo_ctx: Context, clock: FixedClock, duo: DuoStandIn
) -> None:
    MfaService(duo_ctx).set_type(Actor.cli(), "alice", "duo", configure_later=True)
    duo.fail_status = 500
    async with console(duo_ctx, clock) as pilot:
        await log_in(pilot, "alice", PASSWORD)
        await on_screen(pilot, "EnrollmentScreen")
        await click(pilot, "#continue")
        await wait_until(
            pilot, lambda: "answered with an error (HTTP 500)" in shown(pilot), "the failure"
        )
        duo.fail_status = None
        await click(pilot, "#continue")
        await wait_until(
            pilot,
            lambda: DEVICES in static_text(pilot, "#enrollment-instructions"),
            "the list of Duo devices",
        )
