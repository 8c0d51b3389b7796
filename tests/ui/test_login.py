"""Login on real screens: one answer for a wrong password and an unknown user, the second factor,
lockout on wrong codes only, backup codes used once, and wrong passwords slowed but never locking."""

from __future__ import annotations

import re

from textual.widgets import Button, Label

from mfa_tui.core.access import Actor
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.users import UserView
from tests.ui.conftest import (
    PASSWORD,
    add_user,
    audit_events,
    code_now,
    console,
    enroll_totp,
    enter_code,
    lockout_row,
    log_in,
    notifications,
    on_screen,
    screen_name,
    settle,
    shown,
    static_text,
)

NOT_CORRECT = "The username or password is not correct."
LOCKED = "Too many wrong codes: the account is locked; wait, or ask the helpdesk to unlock it."


def wrong_code(secret: str, clock: FixedClock) -> str:
    """Six digits that match no time-step near the clock's time."""
    import pyotp

    totp = pyotp.TOTP(secret)
    near = {totp.at(clock.now().timestamp() + 30 * shift) for shift in range(-2, 3)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in near)


async def test_wrong_password_and_unknown_user_get_the_same_answer(
    ctx: Context, clock: FixedClock, admin: UserView
) -> None:
    add_user(ctx, "alice")
    async with console(ctx, clock) as pilot:
        await log_in(pilot, "alice", "Not-Her-Password-1")
        wrong_password = static_text(pilot, "#login-message")
        await log_in(pilot, "nobody", "Not-Her-Password-1")
        unknown_user = static_text(pilot, "#login-message")
        assert screen_name(pilot) == "LoginScreen"
    assert wrong_password == unknown_user == NOT_CORRECT
    assert [event.target for event in audit_events(ctx, "login.password_refused")] == ["alice"]
    assert audit_events(ctx, "login.success") == []


async def test_a_user_with_an_authenticator_is_asked_for_the_code(
    ctx: Context, clock: FixedClock, admin: UserView
) -> None:
    add_user(ctx, "alice")
    secret = enroll_totp(ctx, clock, "alice")
    async with console(ctx, clock) as pilot:
        await log_in(pilot, "alice", PASSWORD)
        assert screen_name(pilot) == "SecondFactorScreen", shown(pilot)
        labels = [str(label.render()) for label in pilot.app.screen.query(Label)]
        assert "Code" in labels
        assert pilot.app.signed_in is None  # the password alone opens nothing
        await enter_code(pilot, code_now(secret, clock))
        await on_screen(pilot, "PreferencesScreen")
    [success] = audit_events(ctx, "login.success")
    assert (success.actor, success.details) == ("alice", {"method": "totp"})


async def test_wrong_codes_lock_the_account_and_then_the_right_code_is_refused(
    ctx: Context, clock: FixedClock, admin: UserView
) -> None:
    add_user(ctx, "alice")
    secret = enroll_totp(ctx, clock, "alice")
    async with console(ctx, clock) as pilot:
        await log_in(pilot, "alice", PASSWORD)
        for _ in range(4):
            await enter_code(pilot, wrong_code(secret, clock))
            assert static_text(pilot, "#second-factor-message") == "The code was not accepted."
        assert lockout_row(ctx, "alice").locked_at is None  # type: ignore[union-attr]
        await enter_code(pilot, wrong_code(secret, clock))  # the fifth locks, and says so
        assert static_text(pilot, "#second-factor-message") == LOCKED
        assert lockout_row(ctx, "alice").locked_at is not None  # type: ignore[union-attr]
        await enter_code(pilot, code_now(secret, clock))
        assert screen_name(pilot) == "SecondFactorScreen"
        assert static_text(pilot, "#second-factor-message") == LOCKED
        assert pilot.app.signed_in is None
    assert audit_events(ctx, "login.success") == []
    refusals = [event.details for event in audit_events(ctx, "verify.refused")]
    assert refusals[0] == {"reason": "locked"}
    assert sum(1 for details in refusals if details.get("reason") == "wrong_code") == 5


async def test_a_backup_code_works_once(ctx: Context, clock: FixedClock, admin: UserView) -> None:
    add_user(ctx, "alice")
    enroll_totp(ctx, clock, "alice")
    codes = MfaService(ctx).generate_backup_codes(Actor.cli(), "alice")
    async with console(ctx, clock) as pilot:
        await log_in(pilot, "alice", PASSWORD)
        await pilot.click("#use-backup-code")
        await settle(pilot)
        assert "backup code" in str(pilot.app.screen.query_one("#code-prompt").render())
        await enter_code(pilot, codes[0])
        await on_screen(pilot, "PreferencesScreen")
        assert any(f"{len(codes) - 1} left" in message for message in notifications(pilot))
    async with console(ctx, clock) as pilot:
        await log_in(pilot, "alice", PASSWORD)
        await pilot.click("#use-backup-code")
        await enter_code(pilot, codes[0])
        assert screen_name(pilot) == "SecondFactorScreen"
        assert static_text(pilot, "#second-factor-message") == "The code was not accepted."
    assert [event.details for event in audit_events(ctx, "login.success")] == [
        {"method": "backup_code"}
    ]


def stated_wait(message: str) -> int:
    assert message.startswith("Too many failed logins"), message
    found = re.search(r"wait (\d+) s", message)
    assert found is not None, message
    return int(found.group(1))


async def test_wrong_passwords_are_slowed_but_never_lock(
    ctx: Context, clock: FixedClock, admin: UserView
) -> None:
    add_user(ctx, "alice")
    async with console(ctx, clock) as pilot:
        for attempt in range(10):
            await log_in(pilot, "alice", f"Wrong-Password-{attempt:02d}")
            assert static_text(pilot, "#login-message") == NOT_CORRECT
            if attempt == 2:  # three are free; then each try must wait twice as long as the last
                await log_in(pilot, "alice", f"Wrong-Password-{attempt:02d}")
                clock.advance(seconds=stated_wait(static_text(pilot, "#login-message")))
            elif attempt > 2:
                clock.advance(seconds=300)  # past the longest wait, so every try counts
        row = lockout_row(ctx, "alice")
        assert row is not None and row.password_failures == 10 and row.locked_at is None
        clock.advance(seconds=-300)
        # The right password, too early: still slowed (not locked); after the wait it works.
        await log_in(pilot, "alice", PASSWORD)
        assert not pilot.app.screen.query_one("#log-in", Button).disabled
        clock.advance(seconds=stated_wait(static_text(pilot, "#login-message")))
        await log_in(pilot, "alice", PASSWORD)
        await on_screen(pilot, "PreferencesScreen")
    row = lockout_row(ctx, "alice")
    assert row is not None and row.password_failures == 0 and row.failed_attempts == 0
    assert [event.target for event in audit_events(ctx, "login.success")] == ["alice"]
