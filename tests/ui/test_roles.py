"""Who may do what (SPEC §1), on real screens and in the service behind them: helpdesk acts on
role ``user`` only and grants no roles, nobody changes their own MFA from Administration, and a
plain user never reaches Administration at all. Every refusal is audited as ``denied``."""

from __future__ import annotations

import pytest
from textual.widgets import Button, Checkbox, Select

from mfa_tui.core.access import Actor
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.errors import PermissionDenied
from mfa_tui.core.models import Role
from mfa_tui.core.services.user_edit import save_user_edit
from mfa_tui.core.services.users import GeneralFields, UserView
from tests.ui.conftest import (
    ADMIN,
    PASSWORD,
    add_user,
    admin_console,
    audit_events,
    console,
    log_in,
    notifications,
    on_screen,
    screen_name,
    search,
    search_and_open,
    settle,
    shown,
    static_text,
    user_row,
    wait_until,
)


async def test_helpdesk_edits_users_but_not_administrators_and_grants_no_role(
    ctx: Context, clock: FixedClock, admin: UserView
) -> None:
    helen = add_user(ctx, "helen", role=Role.HELPDESK)
    alice = add_user(ctx, "alice")
    async with console(ctx, clock) as pilot:
        await log_in(pilot, "helen", PASSWORD)
        await on_screen(pilot, "UsersScreen")
        # Enter on an administrator: a message, no edit form, and the refusal in the log.
        await search(pilot, ADMIN)
        await pilot.press("enter")
        await wait_until(pilot, lambda: notifications(pilot), "a message")
        await settle(pilot)
        assert screen_name(pilot) == "UsersScreen"
        assert notifications(pilot) == ["Helpdesk staff can only act on users with the role user."]
        [denied] = audit_events(ctx, "denied")
        assert (denied.actor, denied.target) == ("helen", ADMIN)
        # A plain user opens, with Role (and Enabled) locked and Multifactor available.
        await pilot.press("escape")
        await search_and_open(pilot, "alice")
        screen = pilot.app.screen
        assert screen.query_one("#role", Select).disabled
        assert screen.query_one("#enabled", Checkbox).disabled
        assert not screen.query_one("#mfa-type", Select).disabled  # her MFA is helpdesk's job
        assert len(audit_events(ctx, "denied")) == 1
    # The disabled control is not the only guard: the service refuses too, and logs it.
    actor = Actor(helen.username, helen.role, helen.id)
    with pytest.raises(PermissionDenied):
        save_user_edit(ctx, actor, alice.id, alice.version, GeneralFields(role=Role.ADMIN), None)
    assert user_row(ctx, "alice").role == Role.USER  # type: ignore[union-attr]
    denied = audit_events(ctx, "denied")[0]
    assert (denied.actor, denied.target) == ("helen", "alice")
    assert "roles" in denied.details["action"]


async def test_an_administrator_changes_their_own_mfa_in_preferences_only(
    ctx: Context, clock: FixedClock, admin: UserView
) -> None:
    async with admin_console(ctx, clock) as pilot:
        await search_and_open(pilot, ADMIN)
        screen = pilot.app.screen
        for selector in ("#mfa-type", "#configure-later", "#configure-now"):
            assert screen.query_one(selector).disabled, selector
        assert screen.query_one("#role", Select).disabled  # nor their own role
        assert "Change your own MFA in Preferences" in static_text(pilot, "#mfa-hint")
        assert "Change your own MFA in Preferences" in shown(pilot)
        assert not screen.query_one("#update", Button).disabled  # General stays editable


async def test_a_plain_user_never_reaches_administration(
    ctx: Context, clock: FixedClock, admin: UserView
) -> None:
    add_user(ctx, "alice")
    async with console(ctx, clock) as pilot:
        await log_in(pilot, "alice", PASSWORD)
        await on_screen(pilot, "PreferencesScreen")
        await settle(pilot)
        for key in ("l", "s", "n", "slash", "u", "r", "delete", "p"):
            await pilot.press(key)
            await settle(pilot)
            assert screen_name(pilot) == "PreferencesScreen", key
        stack = [type(screen).__name__ for screen in pilot.app.screen_stack]
        assert not {"UsersScreen", "AuditLogScreen", "ServerSettingsScreen"} & set(stack)
        commands = {command.title for command in pilot.app.get_system_commands(pilot.app.screen)}
        assert "Preferences – Multi-factor" in commands
        assert not {"Administration – Users", "Logs", "Server Settings – Multi-factor"} & commands
