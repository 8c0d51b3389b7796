"""Idle sessions end: ``MfaTuiApp(idle_timeout=…)``, as ``mfa-tui serve`` starts every tab's console.

The timeout is measured on the app's clock (a ``FixedClock`` here, moved by the test), checked
every ``IDLE_CHECK_SECONDS`` of real time (shortened here). A key press starts the count again;
once the timeout passes without one, the app signs the user out and exits with a message.
"""

from __future__ import annotations

from datetime import timedelta

from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.services.users import UserView
from mfa_tui.ui.app import MfaTuiApp
from tests.ui.conftest import (
    ADMIN,
    ADMIN_PASSWORD,
    SIZE,
    audit_events,
    log_in,
    on_screen,
    settle,
    wait_until,
)

TIMEOUT = timedelta(minutes=15)


async def test_a_session_ends_after_the_idle_timeout_and_a_key_press_restarts_the_count(
    ctx: Context, clock: FixedClock, admin: UserView
) -> None:
    app = MfaTuiApp(context=ctx, clock=clock, idle_timeout=TIMEOUT)
    app.IDLE_CHECK_SECONDS = 0.05
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await on_screen(pilot, "LoginScreen")
        await log_in(pilot, ADMIN, ADMIN_PASSWORD)
        await on_screen(pilot, "UsersScreen")

        clock.advance(minutes=14)
        await pilot.pause(0.3)  # several checks: not yet
        assert app.return_code is None and app.signed_in is not None

        await pilot.press("down")  # a key: the count starts again
        clock.advance(minutes=14)
        await pilot.pause(0.3)
        assert app.return_code is None and app.signed_in is not None

        clock.advance(minutes=1)
        await wait_until(pilot, lambda: app.return_code is not None, "the idle timeout")
        assert app.return_code == 0
        assert app.signed_in is None
        assert [str(message) for message in app._exit_renderables] == [
            "Session ended after 15 minutes without a key press or a click; log in again to go on."
        ]
    [logout] = audit_events(ctx, "logout")  # recorded before the process ends
    assert (logout.actor, logout.target, logout.details) == (ADMIN, ADMIN, {"reason": "idle"})


async def test_without_an_idle_timeout_a_session_stays_open(
    ctx: Context, clock: FixedClock, admin: UserView
) -> None:
    app = MfaTuiApp(context=ctx, clock=clock)
    app.IDLE_CHECK_SECONDS = 0.05
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await on_screen(pilot, "LoginScreen")
        clock.advance(hours=24)
        await pilot.pause(0.3)
        assert app.return_code is None
