"""``mfa-tui login`` on real screens: no password prompt, own MFA only, administration only for
staff who prove their second factor, and leaving ends the process (never a login screen).

Runs ``TerminalLoginApp`` with Pilot on SQLite and PostgreSQL, as the CLI starts it after mapping
the OS account (tests/cli/test_cli_pam.py covers that mapping; tests/e2e/test_tmux_login.py the
real terminal).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from textual.pilot import Pilot

from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.errors import Refused
from mfa_tui.core.models import Role
from mfa_tui.core.services.terminal_login import TerminalLoginService
from mfa_tui.ui.login_session import TerminalLoginApp
from mfa_tui.ui.screens.backup_codes import BackupCodesScreen
from mfa_tui.ui.screens.enrollment import EnrollmentScreen
from mfa_tui.ui.screens.preferences import PreferencesScreen
from mfa_tui.ui.screens.second_factor import SecondFactorScreen
from mfa_tui.ui.screens.step_up import StepUpScreen
from mfa_tui.ui.screens.users import UsersScreen
from tests.ui.conftest import audit_events
from tests.ui.test_enrollment_flow import (
    SMALL,
    WIDE,
    add_user,
    configure_totp,
    enter_code,
    on_screen,
    scan_qr,
    stored_user,
    until,
    wrong_code,
)


@asynccontextmanager
async def terminal_login(
    ctx: Context, os_user: str, size: tuple[int, int] = WIDE
) -> AsyncIterator[Pilot[None]]:
    """What ``mfa-tui login`` runs for ``os_user`` once sudo has named them."""
    app = TerminalLoginApp(ctx, TerminalLoginService(ctx).start(os_user, "sudo"))
    async with app.run_test(size=size) as pilot:
        yield pilot


async def enroll(pilot: Pilot[None], clock: FixedClock) -> None:
    """From the enrollment screen to Preferences: QR code, code, backup codes saved."""
    await on_screen(pilot, EnrollmentScreen)
    await pilot.click("#continue")
    totp = await scan_qr(pilot)
    await enter_code(pilot, totp.at(clock.now()))
    await on_screen(pilot, BackupCodesScreen)
    await pilot.click("#saved")
    await on_screen(pilot, PreferencesScreen)


def palette_titles(pilot: Pilot[None]) -> list[str]:
    app = pilot.app
    return [command.title for command in app.get_system_commands(app.screen)]


async def test_a_pending_user_enrolls_without_a_password_and_lands_on_preferences(
    ctx: Context, clock: FixedClock
) -> None:
    add_user(ctx, "alice", mfa_type="totp")
    async with terminal_login(ctx, "alice", SMALL) as pilot:
        await enroll(pilot, clock)
        assert (stored_user(ctx, "alice").mfa_status, pilot.app.signed_in.user.role) == (
            "configured",
            Role.USER,
        )
    [started] = audit_events(ctx, "login.terminal")
    assert (started.actor, started.target, started.details) == (
        "os:alice",
        "alice",
        {"next": "enroll", "via": "sudo"},
    )
    [login] = audit_events(ctx, "login.success")
    assert (login.actor, login.details) == ("alice", {"method": "enrollment"})


async def test_leaving_ends_the_process_instead_of_offering_a_password_login(
    ctx: Context,
) -> None:
    add_user(ctx, "alice", mfa_type="totp")
    async with terminal_login(ctx, "alice") as pilot:
        await on_screen(pilot, EnrollmentScreen)
        await pilot.click("#leave")
        await until(pilot, lambda: pilot.app._exit, "the app to exit")
        assert pilot.app.return_code == 0
        assert pilot.app._exit_renderables == [
            "Setup was not finished: it starts again at your next login."
        ]


async def test_a_user_with_a_factor_opens_preferences_and_changes_need_the_factor(
    ctx: Context, clock: FixedClock
) -> None:
    add_user(ctx, "alice")
    configure_totp(ctx, clock, "alice")
    async with terminal_login(ctx, "alice") as pilot:
        await on_screen(pilot, PreferencesScreen)
        # SSH proved the key, not the factor: reconfiguring asks for a code first.
        assert pilot.app.signed_in.proved_at is None
        await pilot.click("#reconfigure")
        await on_screen(pilot, StepUpScreen)
        assert "Administration – Users" not in palette_titles(pilot)
        await pilot.press("escape")
        await on_screen(pilot, PreferencesScreen)
        await pilot.press("x")
        await until(pilot, lambda: pilot.app._exit, "the app to exit")
    [login] = audit_events(ctx, "login.success")
    assert login.details == {"method": "terminal"}


async def test_staff_reach_administration_only_by_proving_their_factor(
    ctx: Context, clock: FixedClock
) -> None:
    add_user(ctx, "root", role=Role.ADMIN)
    totp = configure_totp(ctx, clock, "root")
    async with terminal_login(ctx, "root") as pilot:
        await on_screen(pilot, SecondFactorScreen)
        # SSH stood in for the password: a temporary access pass may not stand in for the factor.
        assert not pilot.app.screen.query_one("#access-pass").display
        await enter_code(pilot, wrong_code(totp, clock))
        await until(pilot, lambda: audit_events(ctx, "verify.refused"), "the refusal")
        assert type(pilot.app.screen) is SecondFactorScreen
        await enter_code(pilot, totp.at(clock.now()))
        await on_screen(pilot, UsersScreen)
        assert pilot.app.signed_in.is_staff
        assert "Server Settings – Multi-factor" in palette_titles(pilot)
        # Textual's screenshot would be a file of the service account's: not offered here.
        assert "Screenshot" not in palette_titles(pilot)


async def test_staff_without_a_proven_factor_get_their_own_mfa_only(
    ctx: Context, clock: FixedClock
) -> None:
    add_user(ctx, "helen", role=Role.HELPDESK)  # no second factor at all
    add_user(ctx, "root", role=Role.ADMIN, mfa_type="totp")  # pending: enrolls first
    async with terminal_login(ctx, "helen") as pilot:
        await on_screen(pilot, PreferencesScreen)
        assert not pilot.app.signed_in.is_staff
        assert pilot.app.signed_in.actor.role == Role.USER
        assert "Administration – Users" not in palette_titles(pilot)
        await pilot.press("escape")  # nothing underneath to go back to
        assert type(pilot.app.screen) is PreferencesScreen

    async with terminal_login(ctx, "root", SMALL) as pilot:
        await enroll(pilot, clock)
        # Enrolling proved a new factor, not a working one: still no administration.
        assert not pilot.app.signed_in.is_staff
        assert "Server Settings – Multi-factor" not in palette_titles(pilot)


def test_an_os_account_differing_only_in_case_is_not_the_user(ctx: Context) -> None:
    add_user(ctx, "alice")
    with pytest.raises(Refused, match="no mfa-tui user for the OS account 'Alice'"):
        TerminalLoginService(ctx).start("Alice", "uid")
    assert TerminalLoginService(ctx).start("alice", "uid").user.username == "alice"
