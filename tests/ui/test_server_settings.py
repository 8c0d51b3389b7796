"""Server Settings – Multi-factor, administrators only (Pilot on SQLite and PostgreSQL).

A change of MFA usage is confirmed with the number of users it affects (checked here against
the database), a bad value is refused with one sentence and nothing is saved, and helpdesk staff
can neither open the screen nor change a setting through the core.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select
from textual.pilot import Pilot
from textual.widgets import Input, Select

from mfa_tui.core.access import Actor
from mfa_tui.core.audit import list_events
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.errors import PermissionDenied
from mfa_tui.core.models import User
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import UserService
from mfa_tui.ui.app import MfaTuiApp
from mfa_tui.ui.screens.confirm import ConfirmScreen
from mfa_tui.ui.screens.server_settings import ServerSettingsScreen
from mfa_tui.ui.screens.users import UsersScreen
from tests.ui.test_enrollment_flow import (
    WIDE,
    add_user,
    cheap_password_hashing,  # noqa: F401 - an autouse fixture, active here too
    configure_totp,
    log_in,
    log_out,
    on_screen,
    text_of,
    until,
)


def users_where(ctx: Context, *conditions: Any) -> int:
    with ctx.db.read() as session:
        return session.exec(select(func.count()).select_from(User).where(*conditions)).one()


def settings_changes(ctx: Context) -> list[dict[str, Any]]:
    with ctx.db.read() as session:
        return [
            event.details
            for event in list_events(session, text="settings.change")
            if event.action == "settings.change"
        ]


async def save(pilot: Pilot[Any]) -> None:
    await pilot.press("ctrl+s")


async def saved_message(pilot: Pilot[Any], screen: ServerSettingsScreen) -> str:
    await until(pilot, lambda: text_of(screen, "#settings-message") != "", "the save to finish")
    return text_of(screen, "#settings-message")


@pytest.fixture
def people(ctx: Context, clock: FixedClock) -> None:
    add_user(ctx, "root", role="admin")
    add_user(ctx, "hd", role="helpdesk")
    add_user(ctx, "una")  # Type None
    add_user(ctx, "pete", mfa_type="totp")  # pending
    add_user(ctx, "cleo")
    configure_totp(ctx, clock, "cleo")


async def test_usage_change_is_confirmed_with_the_users_affected_and_bad_values_save_nothing(
    ctx: Context, people: None
) -> None:
    app = MfaTuiApp(context=ctx, clock=ctx.clock)
    async with app.run_test(size=WIDE) as pilot:
        await log_in(pilot, "root")
        await on_screen(pilot, UsersScreen)
        await pilot.press("s")
        settings = await on_screen(pilot, ServerSettingsScreen)
        usage = settings.query_one("#mfa-usage", Select)
        assert usage.value == "optional"

        # Optional → Required: every user without a type must now enroll.
        without_type = users_where(ctx, User.mfa_type == "none")
        assert without_type == 3  # root, hd, una
        usage.value = "required"
        await save(pilot)
        dialog = await on_screen(pilot, ConfirmScreen)
        question = text_of(dialog, "#confirm-question")
        assert "from Optional per user to Required?" in question
        assert f"{without_type} users must use a second factor" in question

        await pilot.press("escape")  # No: nothing is saved
        await on_screen(pilot, ServerSettingsScreen)
        assert SettingsStore(ctx).load().usage == "optional"
        assert settings_changes(ctx) == []

        await save(pilot)
        await on_screen(pilot, ConfirmScreen)
        await pilot.press("y")
        await on_screen(pilot, ServerSettingsScreen)
        assert await saved_message(pilot, settings) == "Settings saved."
        assert SettingsStore(ctx).load().usage == "required"
        assert settings_changes(ctx) == [{"mfa.usage": {"before": "optional", "after": "required"}}]
        # Under Required, una (Type None) now shows the Default type, pending.
        una = UserService(ctx).get("una")
        assert (una.mfa_type, una.mfa_status) == ("totp", "pending")

        # Required → Skipped: nobody is asked any more, so every user is affected.
        settings.query_one("#settings-message").update("")
        usage.value = "skipped"
        await save(pilot)
        dialog = await on_screen(pilot, ConfirmScreen)
        everyone = users_where(ctx)
        assert f"{everyone} users will no longer be asked" in text_of(dialog, "#confirm-question")
        await pilot.press("y")
        await on_screen(pilot, ServerSettingsScreen)
        assert await saved_message(pilot, settings) == "Settings saved."
        assert SettingsStore(ctx).load().usage == "skipped"
        assert len(settings_changes(ctx)) == 2

        # A bad value: one sentence, and nothing of the form is saved, not even the good values.
        settings.query_one("#settings-message").update("")
        usage.value = "optional"
        settings.query_one("#totp-issuer", Input).value = "Example Corp"
        settings.query_one("#lockout-attempts", Input).value = "abc"
        await save(pilot)
        message = await saved_message(pilot, settings)
        assert message == "lockout.attempts takes a whole number, not 'abc'."
        assert type(app.screen) is ServerSettingsScreen  # no confirmation for what cannot be saved
        stored = SettingsStore(ctx).load()
        assert (stored.usage, stored.lockout_attempts, stored.totp_issuer) == (
            "skipped",
            5,
            "mfa-tui",
        )
        assert len(settings_changes(ctx)) == 2

        await pilot.press("escape")
        await on_screen(pilot, UsersScreen)
        await log_out(pilot)

        await log_in(pilot, "hd")
        await on_screen(pilot, UsersScreen)
        await pilot.press("s")
        await until(
            pilot,
            lambda: any("Only administrators" in str(n.message) for n in app._notifications),
            "the refusal to be said",
        )
        assert type(app.screen) is UsersScreen
        assert not any(isinstance(screen, ServerSettingsScreen) for screen in app.screen_stack)

    # The core refuses too, whatever screen might ask, and the refusal is audited.
    helpdesk = UserService(ctx).get("hd")
    actor = Actor(name="hd", role="helpdesk", user_id=helpdesk.id)
    with pytest.raises(PermissionDenied, match="Only administrators"):
        SettingsStore(ctx).set_many(actor, {"mfa.usage": "optional"})
    assert SettingsStore(ctx).load().usage == "skipped"
    with ctx.db.read() as session:
        denied = [e for e in list_events(session, text="denied") if e.action == "denied"]
    # Both refusals, the screen's (s) and the core's, are audited.
    assert [(e.actor, e.details["action"]) for e in denied] == [
        ("hd", "change server settings")
    ] * 2
