"""A session starts only once its login is recorded and ends with a recorded logout; while either
is written, a "Signing in…" / "Signing out…" screen stands in for every screen of the session, so
nothing can be pressed twice, backed out of, or used by a session that is over.

The recording is slowed (a real write, after a sleep) to hold the moment open; the database is
real throughout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.errors import StorageError
from mfa_tui.core.services.auth import AuthService
from mfa_tui.core.services.users import UserView
from mfa_tui.ui.screens import user_edit
from tests.ui.conftest import (
    ADMIN,
    ADMIN_PASSWORD,
    admin_console,
    audit_events,
    console,
    fill,
    notifications,
    on_screen,
    screen_name,
    search_and_open,
    static_text,
    user_row,
    wait_until,
)


def slowed(call: Callable[..., Any], seconds: float) -> Callable[..., Any]:
    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(seconds)
        return call(*args, **kwargs)

    return slow


def stack(pilot: Any) -> list[str]:
    return [type(screen).__name__ for screen in pilot.app.screen_stack]


async def test_logging_out_is_recorded_and_leaves_nothing_of_the_session(
    ctx: Context, clock: FixedClock, admin: UserView
) -> None:
    async with admin_console(ctx, clock) as pilot:
        await pilot.press("x")
        await on_screen(pilot, "LoginScreen")
        assert pilot.app.signed_in is None and len(pilot.app.screen_stack) == 2
        assert static_text(pilot, "#login-message") == "You have logged out."
    [logout] = audit_events(ctx, "logout")
    assert (logout.actor, logout.target, logout.details) == (
        ADMIN,
        ADMIN,
        {"reason": "logged out"},
    )
    [login] = audit_events(ctx, "login.success")
    assert logout.seq > login.seq


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_logging_out_while_a_save_runs_leaves_no_screen_of_the_session(
    ctx: Context, clock: FixedClock, admin: UserView, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The save pressed before the logout still finishes (it was asked for), but User edit is
    gone at once: its late answer cannot bring a screen of the ended session back."""
    from tests.ui.conftest import add_user

    add_user(ctx, "alice")
    monkeypatch.setattr(user_edit, "save_user_edit", slowed(user_edit.save_user_edit, 1.0))
    monkeypatch.setattr(AuthService, "record_logout", slowed(AuthService.record_logout, 2.0))
    async with admin_console(ctx, clock) as pilot:
        await search_and_open(pilot, "alice")
        await fill(pilot, "#display-name", "Alice Liddell")
        await pilot.click("#update")  # not the helper: it would wait for the save
        await pilot.pause(0.1)
        pilot.app.action_log_out()
        await pilot.pause(0.1)
        assert stack(pilot) == ["Screen", "WaitingScreen"] and pilot.app.signed_in is None
        assert static_text(pilot, "#waiting-message") == "Signing out…"
        await pilot.pause(1.2)  # the save has answered meanwhile
        assert stack(pilot) == ["Screen", "WaitingScreen"]
        await on_screen(pilot, "LoginScreen")
        assert stack(pilot) == ["Screen", "LoginScreen"] and pilot.app.is_running
    alice = user_row(ctx, "alice")
    assert alice is not None and alice.display_name == "Alice Liddell"
    assert len(audit_events(ctx, "logout")) == 1


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_nothing_can_be_pressed_while_the_login_is_recorded(
    ctx: Context, clock: FixedClock, admin: UserView, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(AuthService, "record_login", slowed(AuthService.record_login, 1.0))
    async with console(ctx, clock) as pilot:
        await fill(pilot, "#username", ADMIN)
        await fill(pilot, "#password", ADMIN_PASSWORD)
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen_name(pilot) == "WaitingScreen", "Signing in…")
        await pilot.press("escape", "enter", "x")  # Back, again, log out: nothing to take them
        assert stack(pilot) == ["Screen", "WaitingScreen"] and pilot.app.signed_in is None
        await on_screen(pilot, "UsersScreen")
        assert pilot.app.signed_in is not None
    assert len(audit_events(ctx, "login.success")) == 1
    assert audit_events(ctx, "logout") == []


async def test_ctrl_q_logs_out_before_the_process_ends(
    ctx: Context, clock: FixedClock, admin: UserView
) -> None:
    async with admin_console(ctx, clock) as pilot:
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: pilot.app.return_code is not None, "the exit")
    [logout] = audit_events(ctx, "logout")
    assert logout.details == {"reason": "quit"}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_logout_that_cannot_be_recorded_still_logs_out_and_says_so(
    ctx: Context, clock: FixedClock, admin: UserView, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: Any) -> None:
        raise StorageError("The database is busy (locked by another process); try again later.")

    monkeypatch.setattr(AuthService, "record_logout", refuse)
    async with admin_console(ctx, clock) as pilot:
        await pilot.press("x")
        await on_screen(pilot, "LoginScreen")
        assert pilot.app.signed_in is None
        assert notifications(pilot)[-1] == (
            "The logout was not recorded: The database is busy (locked by another process); "
            "try again later."
        )
    assert audit_events(ctx, "logout") == []
