"""Yubikey through the real screens (Pilot, SQLite and PostgreSQL), with real Yubico OTPs.

Configure now in User edit (local mode: the AES key and private ID typed next to the touch), the
first-login enrollment (server mode, against the YubiCloud 2.0 stand-in), the login prompt, a
validation server that is down (a clear sentence, no lockout, the prompt still usable) and the
Server Settings "Test" action. Every test checks the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Input

from mfa_tui.core.access import Actor
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.models import MfaStatus
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import UserView
from tests.helpers.yubico_standin import (
    SimulatedYubikey,
    YubicoStandin,
    closed_port_url,
    running_standin,
)
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
    settle,
    shown,
    static_text,
    user_row,
    wait_until,
)
from tests.ui.test_user_edit_flow import choose_type


@pytest.fixture
def standin() -> Iterator[YubicoStandin]:
    with running_standin() as server:
        yield server


def use_local(ctx: Context) -> None:
    SettingsStore(ctx).set_many(
        Actor.cli(), {"mfa.supported": "totp,yubikey", "yubikey.mode": "local"}
    )


def use_server(ctx: Context, standin: YubicoStandin) -> None:
    SettingsStore(ctx).set_many(
        Actor.cli(),
        {
            "mfa.supported": "totp,yubikey",
            "yubikey.mode": "server",
            "yubikey.server_url": standin.url,
            "yubikey.client_id": standin.client_id,
            "yubikey.api_key": standin.api_key_b64,
        },
    )


async def validate(pilot: Pilot[Any], expected: str) -> None:
    await click(pilot, "#validate")
    await wait_until(
        pilot, lambda: expected in static_text(pilot, "#enrollment-status"), repr(expected)
    )


async def test_configure_now_with_the_aes_key_then_the_user_logs_in_with_a_touch(
    ctx: Context, clock: FixedClock, admin: UserView
) -> None:
    use_local(ctx)
    add_user(ctx, "alice")
    key = SimulatedYubikey()
    async with admin_console(ctx, clock) as pilot:
        await search_and_open(pilot, "alice")
        await choose_type(pilot, "yubikey")
        await click(pilot, "#configure-now")
        await wait_until(
            pilot,
            lambda: pilot.app.screen.query("#enrollment-field-private_id"),
            "the AES key and private ID fields",
        )
        screen = pilot.app.screen
        assert not screen.query_one("#enrollment-qr").display  # nothing to scan
        aes = screen.query_one("#enrollment-field-aes_key", Input)
        assert aes.password  # typed hidden
        await wait_until(pilot, lambda: pilot.app.focused is aes, "the AES key field to have focus")
        assert "AES key" in shown(pilot) and "F2" not in shown(pilot)

        # The touch alone is not enough: the panel asks for the key first.
        await fill(pilot, "#enrollment-code", key.touch())
        await validate(pilot, "Enter the AES key")
        # A wrong AES key: the OTP does not decrypt, nothing is saved.
        await fill(pilot, "#enrollment-field-aes_key", "00" * 16)
        await fill(pilot, "#enrollment-field-private_id", key.private_id_hex)
        await fill(pilot, "#enrollment-code", key.touch())
        await validate(pilot, "not right")
        # A malformed AES key: said under the form, and the verdict on the last code goes away.
        await fill(pilot, "#enrollment-field-aes_key", "not-hex")
        await fill(pilot, "#enrollment-code", key.touch())
        await click(pilot, "#validate")
        await wait_until(pilot, lambda: "AES key" in static_text(pilot, "#edit-message"), "why")
        assert static_text(pilot, "#enrollment-status") == ""
        await fill(pilot, "#enrollment-field-aes_key", key.aes_key_hex)
        enrolled_with = key.touch()
        await fill(pilot, "#enrollment-code", enrolled_with)
        await validate(pilot, "Code verified")
        assert aes.disabled
        await click(pilot, "#update")
        await on_screen(pilot, "UsersScreen")
    alice = user_row(ctx, "alice")
    assert alice is not None
    assert (alice.mfa_type, alice.mfa_status) == ("yubikey", MfaStatus.CONFIGURED)
    assert credentials(ctx, "alice") == [("yubikey", "active")]

    # Her login: an OTP from another key, then the enrollment's own OTP again (spent), then a
    # fresh touch.
    async with console(ctx, clock) as pilot:
        await log_in(pilot, "alice", PASSWORD)
        await on_screen(pilot, "SecondFactorScreen")
        assert "touch your Yubikey" in static_text(pilot, "#code-prompt")
        for refused in (SimulatedYubikey().touch(), enrolled_with):
            await enter_code(pilot, refused)
            assert screen_name(pilot) == "SecondFactorScreen"
            assert static_text(pilot, "#second-factor-message") == "The code was not accepted."
        await enter_code(pilot, key.touch())
        await on_screen(pilot, "PreferencesScreen")


async def test_first_login_enrolls_a_key_checked_by_the_validation_server(
    ctx: Context, clock: FixedClock, standin: YubicoStandin
) -> None:
    use_server(ctx, standin)
    add_user(ctx, "alice", mfa_type="yubikey")  # Configure later by user
    key = standin.register(SimulatedYubikey())
    async with console(ctx, clock) as pilot:
        await log_in(pilot, "alice", PASSWORD)
        await on_screen(pilot, "EnrollmentScreen")
        await click(pilot, "#continue")
        await wait_until(pilot, lambda: credentials(ctx, "alice"), "the enrollment")
        assert credentials(ctx, "alice") == [("yubikey", "verifying")]
        assert not pilot.app.screen.query(".enrollment-field")  # server mode: the touch only
        assert "touch the key" in static_text(pilot, "#enrollment-instructions")

        await fill(pilot, "#enrollment-code", key.touch())
        await pilot.press("enter")  # a Yubikey ends its OTP with Enter
        await on_screen(pilot, "BackupCodesScreen")
        await click(pilot, "#saved")
        await on_screen(pilot, "PreferencesScreen")
    alice = user_row(ctx, "alice")
    assert alice is not None
    assert (alice.mfa_type, alice.mfa_status) == ("yubikey", MfaStatus.CONFIGURED)
    assert credentials(ctx, "alice") == [("yubikey", "active")]
    assert standin.requests[-1]["id"] == standin.client_id  # the server was asked


async def test_validation_server_down_at_login_says_so_and_never_locks(
    ctx: Context, clock: FixedClock, standin: YubicoStandin, refused_port: int
) -> None:
    use_server(ctx, standin)
    add_user(ctx, "alice", mfa_type="yubikey")
    key = standin.register(SimulatedYubikey())
    start = MfaService(ctx).begin_enrollment(Actor.cli(), "alice", "yubikey")
    assert MfaService(ctx).confirm_code(Actor.cli(), start.credential_id, key.touch())
    MfaService(ctx).activate(Actor.cli(), "alice", start.credential_id)
    SettingsStore(ctx).set_many(
        Actor.cli(), {"lockout.attempts": "1", "yubikey.server_url": closed_port_url(refused_port)}
    )

    async with console(ctx, clock) as pilot:
        await log_in(pilot, "alice", PASSWORD)
        await on_screen(pilot, "SecondFactorScreen")
        for _ in range(2):
            await enter_code(pilot, key.touch())
            message = static_text(pilot, "#second-factor-message")
            assert "validation server did not answer" in message, shown(pilot)
            assert not pilot.app.screen.query_one("#verify", Button).disabled
        row = lockout_row(ctx, "alice")
        assert row is None or (row.failed_attempts == 0 and row.locked_at is None)

        # The server is back: the next touch goes through on the same prompt.
        SettingsStore(ctx).set_many(Actor.cli(), {"yubikey.server_url": standin.url})
        await enter_code(pilot, key.touch())
        await on_screen(pilot, "PreferencesScreen")


# The Test action reads settings and asks the server; the database engine plays no part.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_server_settings_test_button_reports_the_server(
    ctx: Context, clock: FixedClock, admin: UserView, standin: YubicoStandin, refused_port: int
) -> None:
    use_server(ctx, standin)
    async with admin_console(ctx, clock) as pilot:
        await pilot.press("s")
        await on_screen(pilot, "ServerSettingsScreen")
        await click(pilot, "#test-yubikey")
        await settle(pilot)
        said = static_text(pilot, "#settings-message")
        assert "answered with a valid signature" in said, said
        assert standin.requests, "the stand-in was asked"

        SettingsStore(ctx).set_many(
            Actor.cli(), {"yubikey.server_url": closed_port_url(refused_port)}
        )
        await click(pilot, "#test-yubikey")
        await settle(pilot)
        said = static_text(pilot, "#settings-message")
        assert "did not answer" in said and "yubikey.server_url" in said, said
