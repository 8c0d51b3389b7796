"""First run: an empty database asks for the first administrator, refuses a mismatch or a weak
password with a sentence, then creates them and hands over to the login screen."""

from __future__ import annotations

from mfa_tui.core import passwords
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.models import Role
from mfa_tui.core.services.users import UserService
from tests.ui.conftest import (
    ADMIN,
    ADMIN_PASSWORD,
    audit_events,
    click,
    console,
    fill,
    log_in,
    on_screen,
    screen_name,
    shown,
    static_text,
    user_row,
    wait_until,
)


async def test_first_run_creates_the_administrator(ctx: Context, clock: FixedClock) -> None:
    async with console(ctx, clock) as pilot:
        assert screen_name(pilot) == "FirstRunScreen"
        assert "Create administrator" in shown(pilot)

        async def create(password: str, again: str) -> str:
            await fill(pilot, "#username", ADMIN)
            await fill(pilot, "#password", password)
            await fill(pilot, "#password-again", again)
            await click(pilot, "#create")
            await wait_until(
                pilot,
                lambda: (
                    screen_name(pilot) != "FirstRunScreen"
                    or not pilot.app.screen.query_one("#create").disabled
                ),
                "the answer",
            )
            return (
                static_text(pilot, "#first-run-message")
                if screen_name(pilot) == "FirstRunScreen"
                else ""
            )

        mismatch = await create(ADMIN_PASSWORD, ADMIN_PASSWORD + "x")
        assert mismatch == "The two passwords differ: type the same password twice."
        assert UserService(ctx).count() == 0

        weak = await create("short-1", "short-1")
        assert weak.startswith("The password is too short") and weak.endswith("."), weak
        assert UserService(ctx).count() == 0

        await create(ADMIN_PASSWORD, ADMIN_PASSWORD)
        await on_screen(pilot, "LoginScreen")
        assert static_text(pilot, "#login-message") == "Administrator created: log in."
        root = user_row(ctx, ADMIN)
        assert root is not None and root.role == Role.ADMIN and root.enabled
        assert passwords.verify_password(root.password_hash, ADMIN_PASSWORD)
        assert UserService(ctx).count() == 1
        [created] = audit_events(ctx, "user.create")
        assert created.target == ADMIN

        await log_in(pilot, ADMIN, ADMIN_PASSWORD)
        await on_screen(pilot, "UsersScreen")
