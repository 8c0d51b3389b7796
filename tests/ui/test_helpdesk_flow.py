"""The helpdesk walkthrough on real screens (Pilot), on SQLite and PostgreSQL: verify the caller,
a reset that needs it (or an administrator's reason), a temporary access pass used at login, and
an invitation the user redeems in a second console while the agent watches the progress live."""

from __future__ import annotations

from typing import Any

import pyotp
from sqlmodel import select
from textual.pilot import Pilot

from mfa_tui.core.clock import FixedClock
from mfa_tui.core.config import Config
from mfa_tui.core.context import Context, open_context
from mfa_tui.core.models import AccessPass, MfaStatus
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.ui.widgets.enrollment_panel import EnrollmentPanel
from tests.ui.conftest import (
    PASSWORD,
    add_user,
    admin_console,
    audit_events,
    click,
    console,
    enroll_totp,
    fill,
    log_in,
    notifications,
    on_screen,
    screen_name,
    search,
    search_and_open,
    secret_of,
    shown,
    static_text,
    user_row,
    wait_until,
)

NEW_PASSWORD = "Brand-New-Secret-77"


async def open_users_as(pilot: Pilot[Any], name: str) -> None:
    await log_in(pilot, name, PASSWORD)
    await on_screen(pilot, "UsersScreen")


async def test_helpdesk_must_verify_the_caller_before_a_reset(
    ctx: Context, clock: FixedClock
) -> None:
    add_user(ctx, "hd", role="helpdesk")
    add_user(ctx, "bob")
    secret = enroll_totp(ctx, clock, "bob")
    async with console(ctx, clock) as pilot:
        await open_users_as(pilot, "hd")
        await search(pilot, "bob")
        await pilot.press("r")
        await wait_until(
            pilot,
            lambda: any("Verify the caller first" in n for n in notifications(pilot)),
            "the refusal",
        )
        assert screen_name(pilot) == "UsersScreen"
        assert user_row(ctx, "bob").mfa_status == MfaStatus.CONFIGURED  # type: ignore[union-attr]

        await pilot.press("v")
        await on_screen(pilot, "VerifyCallerScreen")
        assert static_text(pilot, "#caller-status") == "Caller not verified."
        await fill(pilot, "#caller-code", "000000")
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: "Not verified" in static_text(pilot, "#caller-message"), "a refusal"
        )
        await fill(pilot, "#caller-code", pyotp.TOTP(secret).at(clock.now()))
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: static_text(pilot, "#caller-status").startswith("Caller verified at 15:09"),
            "verified",
        )
        assert "Enrollment: Backup codes saved" not in shown(pilot)  # bob never saved any
        await pilot.press("escape")
        await on_screen(pilot, "UsersScreen")
        await pilot.press("r")
        await on_screen(pilot, "ConfirmScreen")
        await pilot.press("y")
        await wait_until(
            pilot,
            lambda: user_row(ctx, "bob").mfa_status == MfaStatus.PENDING,  # type: ignore[union-attr]
            "the reset",
        )
    [verified] = audit_events(ctx, "caller.verified")
    assert (verified.actor, verified.target, verified.details) == (
        "hd",
        "bob",
        {"method": "factor"},
    )
    [reset] = audit_events(ctx, "mfa.reset")
    assert reset.actor == "hd" and reset.details["caller"] == "verified"


async def test_an_administrator_overrides_with_a_reason_then_the_pass_works_once_at_login(
    ctx: Context, clock: FixedClock, admin: Any
) -> None:
    add_user(ctx, "bob")
    enroll_totp(ctx, clock, "bob")
    async with admin_console(ctx, clock) as pilot:
        await search(pilot, "bob")
        await pilot.press("t")
        await on_screen(pilot, "OverrideReasonScreen")
        await pilot.press("enter")  # no reason: no override
        await wait_until(
            pilot, lambda: "Give a reason" in static_text(pilot, "#reason-message"), "the hint"
        )
        await fill(pilot, "#reason", "Ticket 4711: phone lost, badge checked")
        await pilot.press("enter")
        await on_screen(pilot, "ShownOnceScreen")
        code = static_text(pilot, "#shown-once-code").strip()
        assert len(code) == 19
        await pilot.press("escape")
        await search_and_open(pilot, "bob")
        await wait_until(
            pilot,
            lambda: "Temporary access pass by root" in static_text(pilot, "#tap-status"),
            "the pass listed on the user",
        )
    [created] = audit_events(ctx, "tap.create")
    assert created.details["reason"] == "Ticket 4711: phone lost, badge checked"
    assert created.details["caller"] == "override"

    async with console(ctx, clock) as pilot:
        await log_in(pilot, "bob", PASSWORD)
        await on_screen(pilot, "SecondFactorScreen")
        # Typed as a second factor, the pass is refused: it is no second factor.
        await fill(pilot, "#code", code)
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: "not accepted" in static_text(pilot, "#second-factor-message"),
            "the refusal",
        )
        await click(pilot, "#access-pass")
        await fill(pilot, "#code", code)
        await pilot.press("enter")
        await on_screen(pilot, "EnrollmentScreen")
    with ctx.db.read() as session:
        [row] = session.exec(select(AccessPass)).all()
    assert row.used_at is not None

    async with console(ctx, clock) as pilot:  # used up: a second login gets nowhere with it
        await log_in(pilot, "bob", PASSWORD)
        await on_screen(pilot, "SecondFactorScreen")
        await click(pilot, "#access-pass")
        await fill(pilot, "#code", code)
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: "not right" in static_text(pilot, "#second-factor-message"), "refusal"
        )
        assert screen_name(pilot) == "SecondFactorScreen"


async def test_an_invitation_enrolls_on_the_users_screen_while_the_agent_watches_live(
    ctx: Context, clock: FixedClock, config: Config
) -> None:
    add_user(ctx, "hd", role="helpdesk")
    add_user(ctx, "dave", password=None, mfa_type="totp")
    user_ctx = open_context(config, clock)  # the user's console: another process, same database
    try:
        async with console(ctx, clock) as agent:
            await open_users_as(agent, "hd")
            await search(agent, "dave")
            await agent.press("i")
            await on_screen(agent, "ConfirmScreen")
            await agent.press("y")
            await on_screen(agent, "ShownOnceScreen")
            code = static_text(agent, "#shown-once-code").strip()
            await agent.press("escape")
            await search_and_open(agent, "dave")
            progress = "#enrollment-progress"
            await wait_until(
                agent, lambda: "Waiting for the user" in static_text(agent, progress), "waiting"
            )

            async with console(user_ctx, clock) as user:
                await click(user, "#invitation")
                await on_screen(user, "InvitationScreen")
                await fill(user, "#invite-username", "dave")
                await fill(user, "#invite-code", code)
                await fill(user, "#invite-password", NEW_PASSWORD)
                await fill(user, "#invite-password-again", NEW_PASSWORD)
                await user.press("enter")
                await on_screen(user, "EnrollmentScreen")
                await click(user, "#continue")
                await wait_until(
                    user,
                    lambda: _panel_uri(user) is not None,
                    "the QR code on the user's screen",
                )
                uri = _panel_uri(user)
                assert uri is not None
                if screen_name(user) == "QrFullScreen":
                    await user.press("escape")
                    await on_screen(user, "EnrollmentScreen")
                # The agent's screen follows without a key pressed there.
                await wait_until(
                    agent, lambda: "QR code shown" in static_text(agent, progress), "QR shown"
                )
                field = user.app.screen.query_one("#enrollment-code")
                field.focus()
                field.value = pyotp.TOTP(secret_of(uri)).at(clock.now())  # type: ignore[attr-defined]
                await user.press("enter")
                await on_screen(user, "BackupCodesScreen")
                await wait_until(
                    agent,
                    lambda: "Backup codes saved" in static_text(agent, progress),
                    "backup codes saved",
                )
                # Never on the agent's side: the URI, the secret, or a credential of its making.
                agent_text = shown(agent)
                assert "otpauth" not in agent_text and secret_of(uri) not in agent_text
                assert secret_of(uri) not in agent_text.replace(" ", "")
    finally:
        user_ctx.close()
    assert user_row(ctx, "dave").mfa_status == MfaStatus.CONFIGURED  # type: ignore[union-attr]
    begun = audit_events(ctx, "mfa.enrollment.begin")
    assert [e.actor for e in begun] == ["dave"]
    assert not audit_events(ctx, "mfa.enrollment.code_verified") or all(
        e.actor == "dave" for e in audit_events(ctx, "mfa.enrollment.code_verified")
    )
    with ctx.db.read() as session:
        [row] = session.exec(select(AccessPass)).all()
    assert row.kind == "invitation" and row.used_at is not None
    assert code.replace("-", "") not in row.code_hash
    assert MfaService(ctx).backup_codes_left("dave") == 10


def _panel_uri(pilot: Pilot[Any]) -> str | None:
    """The otpauth URI the user's enrollment screen shows (as a QR code), once it shows one."""
    for screen in pilot.app.screen_stack:
        for panel in screen.query(EnrollmentPanel):
            if panel.start is not None:
                return panel.start.provisioning_uri
    return None


async def test_a_step_up_inside_a_session_offers_no_access_pass(
    ctx: Context, clock: FixedClock
) -> None:
    add_user(ctx, "bob")
    secret = enroll_totp(ctx, clock, "bob")
    async with console(ctx, clock) as pilot:
        await log_in(pilot, "bob", PASSWORD)
        await on_screen(pilot, "SecondFactorScreen")
        assert pilot.app.screen.query_one("#access-pass").display  # at login: offered
        await fill(pilot, "#code", pyotp.TOTP(secret).at(clock.now()))
        await pilot.press("enter")
        await on_screen(pilot, "PreferencesScreen")
        clock.advance(seconds=10 * 60)  # the login's proof has lapsed: changing asks again
        await click(pilot, "#reconfigure")
        await on_screen(pilot, "StepUpScreen")
        assert not pilot.app.screen.query_one("#access-pass").display
