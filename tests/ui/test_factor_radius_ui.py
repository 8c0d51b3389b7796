"""RADIUS in the console, against a real FreeRADIUS (Pilot, SQLite and PostgreSQL): configure now
in User edit, first-login enrollment, login with an Access-Challenge's second prompt, a server
that does not answer (a clear sentence, nothing counted, the prompt still usable), and the
Server Settings "Test" button."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from textual.widgets import Button, Label

from mfa_tui.core.access import Actor
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.models import MfaStatus
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import UserView
from tests.helpers import freeradius
from tests.helpers.freeradius import RadiusServer
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
    screen_name,
    search_and_open,
    shown,
    static_text,
    user_row,
    wait_until,
)
from tests.ui.test_user_edit_flow import choose_type


@pytest.fixture(scope="module")
def radius() -> Iterator[RadiusServer]:
    yield from freeradius.start_freeradius()


def use_radius(ctx: Context, server: RadiusServer, **extra: str) -> None:
    SettingsStore(ctx).set_many(
        Actor.cli(),
        {
            "mfa.supported": "totp,radius",
            "radius.server": server.host,
            "radius.port": str(server.port),
            "radius.secret": server.secret,
            "radius.timeout": "2",
            **extra,
        },
    )


def enroll_radius(ctx: Context, name: str, passcode: str) -> None:
    mfa = MfaService(ctx)
    start = mfa.begin_enrollment(Actor.cli(), name, "radius")
    assert mfa.confirm_code(Actor.cli(), start.credential_id, passcode)
    mfa.activate(Actor.cli(), name, start.credential_id)


async def test_configure_now_in_user_edit_then_log_in(
    ctx: Context, clock: FixedClock, admin: UserView, radius: RadiusServer
) -> None:
    add_user(ctx, "alice")
    use_radius(ctx, radius)
    async with admin_console(ctx, clock) as pilot:
        await search_and_open(pilot, "alice")
        await choose_type(pilot, "radius")
        await click(pilot, "#configure-now")
        await wait_until(
            pilot,
            lambda: "checked by the RADIUS server as 'alice'" in shown(pilot),
            "the RADIUS instructions",
        )
        assert not pilot.app.screen.query_one("#enrollment-qr").display  # no QR for RADIUS
        assert credentials(ctx, "alice") == [("radius", "verifying")]
        await fill(pilot, "#enrollment-code", "alice-pass")
        await click(pilot, "#validate")
        await wait_until(
            pilot,
            lambda: "Code verified" in static_text(pilot, "#enrollment-status"),
            "the passcode to be verified by FreeRADIUS",
        )
        await click(pilot, "#update")
        await on_screen(pilot, "UsersScreen")
    alice = user_row(ctx, "alice")
    assert alice is not None
    assert (alice.mfa_type, alice.mfa_status) == ("radius", MfaStatus.CONFIGURED)
    assert credentials(ctx, "alice") == [("radius", "active")]

    async with console(ctx, clock) as pilot:
        await log_in(pilot, "alice", PASSWORD)
        await on_screen(pilot, "SecondFactorScreen")
        assert "RADIUS passcode" in static_text(pilot, "#code-prompt")
        await enter_code(pilot, "alice-pass")
        await on_screen(pilot, "PreferencesScreen")


async def test_first_login_enrollment_with_a_second_prompt(
    ctx: Context, clock: FixedClock, radius: RadiusServer
) -> None:
    """carol's server answers her passcode with an Access-Challenge: the prompt is shown and the
    next code, sent with the State, finishes the enrollment."""
    add_user(ctx, "carol")
    use_radius(ctx, radius)
    MfaService(ctx).set_type(Actor.cli(), "carol", "radius", configure_later=True)
    async with console(ctx, clock) as pilot:
        await log_in(pilot, "carol", PASSWORD)
        await on_screen(pilot, "EnrollmentScreen")
        await click(pilot, "#continue")
        await wait_until(
            pilot,
            lambda: "checked by the RADIUS server" in shown(pilot),
            "the RADIUS instructions",
        )
        await fill(pilot, "#enrollment-code", "carol-pass")
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: freeradius.CHALLENGE_PROMPT in shown(pilot), "the server's prompt"
        )
        assert credentials(ctx, "carol") == [("radius", "verifying")]
        await fill(pilot, "#enrollment-code", freeradius.CHALLENGE_CODE)
        await pilot.press("enter")
        await on_screen(pilot, "BackupCodesScreen")
        await click(pilot, "#saved")
        await on_screen(pilot, "PreferencesScreen")
    carol = user_row(ctx, "carol")
    assert carol is not None
    assert (carol.mfa_type, carol.mfa_status) == ("radius", MfaStatus.CONFIGURED)
    assert credentials(ctx, "carol") == [("radius", "active")]


async def test_login_answers_an_access_challenge(
    ctx: Context, clock: FixedClock, radius: RadiusServer
) -> None:
    add_user(ctx, "carol")
    use_radius(ctx, radius)
    freeradius.enroll_challenge_user(ctx, "carol")
    async with console(ctx, clock) as pilot:
        await log_in(pilot, "carol", PASSWORD)
        await on_screen(pilot, "SecondFactorScreen")
        await enter_code(pilot, "carol-pass")
        await wait_until(
            pilot,
            lambda: static_text(pilot, "#code-prompt") == freeradius.CHALLENGE_PROMPT,
            "the server's second prompt",
        )
        assert screen_name(pilot) == "SecondFactorScreen"
        assert pilot.app.screen.challenge_state  # type: ignore[attr-defined]
        # A wrong answer: refused, counted once, and the usual prompt is back for a new start.
        await enter_code(pilot, "000000")
        await wait_until(
            pilot,
            lambda: static_text(pilot, "#second-factor-message") == "The code was not accepted.",
            "the refusal",
        )
        assert "RADIUS passcode" in str(pilot.app.screen.query_one("#code-prompt", Label).render())
        row = lockout_row(ctx, "carol")
        assert row is not None and row.failed_attempts == 1
        await enter_code(pilot, "carol-pass")
        await wait_until(
            pilot,
            lambda: static_text(pilot, "#code-prompt") == freeradius.CHALLENGE_PROMPT,
            "the second prompt again",
        )
        await enter_code(pilot, freeradius.CHALLENGE_CODE)
        await on_screen(pilot, "PreferencesScreen")
    row = lockout_row(ctx, "carol")
    assert row is not None and row.failed_attempts == 0


async def test_server_down_at_login_is_not_counted_and_the_prompt_still_works(
    ctx: Context, clock: FixedClock, radius: RadiusServer, refused_udp_port: int
) -> None:
    add_user(ctx, "alice")
    use_radius(ctx, radius)
    enroll_radius(ctx, "alice", "alice-pass")
    down = refused_udp_port
    use_radius(ctx, radius, **{"radius.port": str(down), "radius.timeout": "1"})
    async with console(ctx, clock) as pilot:
        await log_in(pilot, "alice", PASSWORD)
        await on_screen(pilot, "SecondFactorScreen")
        attempts = SettingsStore(ctx).load()["lockout.attempts"]
        for _ in range(attempts + 1):
            await enter_code(pilot, "alice-pass")
            message = static_text(pilot, "#second-factor-message")
            assert f"The RADIUS server 127.0.0.1:{down} is unreachable" in message
            assert "Traceback" not in shown(pilot)
        assert not pilot.app.screen.query_one("#verify", Button).disabled
        row = lockout_row(ctx, "alice")
        assert row is None or (row.failed_attempts == 0 and row.locked_at is None)
        use_radius(ctx, radius)  # the server is back
        await enter_code(pilot, "alice-pass")
        await on_screen(pilot, "PreferencesScreen")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # a round trip to RADIUS only
async def test_server_settings_test_button(
    ctx: Context, clock: FixedClock, admin: UserView, radius: RadiusServer
) -> None:
    use_radius(ctx, radius)
    async with admin_console(ctx, clock) as pilot:
        await pilot.press("s")
        await on_screen(pilot, "ServerSettingsScreen")
        await click(pilot, "#test-radius")
        await wait_until(
            pilot,
            lambda: "answered a test request" in static_text(pilot, "#settings-message"),
            "the test result",
        )
        message = static_text(pilot, "#settings-message")
        assert f"127.0.0.1:{radius.port}" in message and "Access-Reject" in message
    assert "Login incorrect" in radius.log.read_text()
