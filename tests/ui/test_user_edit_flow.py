"""User edit → Multifactor, as in Devolutions Server: Type, then Configure later by user or
configure now (QR code read from the screen by zbar, a code from pyotp at the frozen clock's time,
Validate), then Update. Every test checks the database, and the configured user then logs in."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from textual.widgets import Button, Checkbox, Input, Select

from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.models import MfaStatus, MfaType, Role
from mfa_tui.core.services.users import UserView
from mfa_tui.ui.screens.user_edit import UserEditScreen
from tests.helpers.qr_decode import decode_qr_text, screen_text
from tests.ui.conftest import (
    PASSWORD,
    add_user,
    admin_console,
    audit_events,
    click,
    code_now,
    console,
    credentials,
    enter_code,
    fill,
    log_in,
    on_screen,
    screen_name,
    search_and_open,
    secret_of,
    shown,
    static_text,
    user_row,
    wait_until,
)

SMALL = (80, 24)


async def choose_type(pilot: Pilot[Any], value: str) -> None:
    """Open the Type dropdown with the keyboard and move to ``value``'s line, then Enter."""
    select = pilot.app.screen.query_one("#mfa-type", Select)
    values = [option_value for _, option_value in select._options]
    select.focus()
    await pilot.press("enter")  # opens the list on the current value
    steps = values.index(value) - values.index(select.value)
    await pilot.press(*(["down"] * steps if steps > 0 else ["up"] * -steps), "enter")
    await wait_until(pilot, lambda: not select.expanded, "the Type list to close")
    assert select.value == value, shown(pilot)


async def test_configure_later_by_user_saves_pending_without_a_credential(
    ctx: Context, clock: FixedClock, admin: UserView
) -> None:
    add_user(ctx, "alice", email="alice@example.com")
    async with admin_console(ctx, clock) as pilot:
        await search_and_open(pilot, "alice")
        screen = pilot.app.screen
        assert isinstance(screen, UserEditScreen) and screen.user.username == "alice"
        await choose_type(pilot, MfaType.TOTP)
        later = screen.query_one("#configure-later", Checkbox)
        assert later.display and not later.value
        await click(pilot, "#configure-later")
        assert later.value
        assert not screen.query_one("#configure-now", Button).display
        await click(pilot, "#update")
        await on_screen(pilot, "UsersScreen")
    alice = user_row(ctx, "alice")
    assert alice is not None
    assert (alice.mfa_type, alice.mfa_status) == (MfaType.TOTP, MfaStatus.PENDING)
    assert credentials(ctx, "alice") == []  # no credential, active or verifying
    [change] = audit_events(ctx, "mfa.set_type")
    assert (change.actor, change.target) == ("root", "alice")


async def test_configure_now_at_80x24_then_the_user_logs_in_with_the_app(
    ctx: Context, clock: FixedClock, admin: UserView
) -> None:
    add_user(ctx, "alice")
    async with admin_console(ctx, clock, SMALL) as pilot:
        await search_and_open(pilot, "alice")
        await choose_type(pilot, MfaType.TOTP)
        await click(pilot, "#configure-now")
        # 80×24 cannot hold the form and the code: the code is shown alone, whole, and readable.
        await on_screen(pilot, "QrFullScreen")
        [uri] = decode_qr_text(screen_text(pilot.app))
        assert uri.startswith("otpauth://totp/mfa-tui:alice?")
        secret = secret_of(uri)
        assert credentials(ctx, "alice") == [("totp", "verifying")]
        await pilot.press("escape")
        await on_screen(pilot, "UserEditScreen")
        await fill(pilot, "#enrollment-code", code_now(secret, clock))
        await click(pilot, "#validate")
        await wait_until(
            pilot,
            lambda: "Code verified" in static_text(pilot, "#enrollment-status"),
            "the code to be verified",
        )
        await click(pilot, "#update")
        await on_screen(pilot, "UsersScreen")
    alice = user_row(ctx, "alice")
    assert alice is not None
    assert (alice.mfa_type, alice.mfa_status) == (MfaType.TOTP, MfaStatus.CONFIGURED)
    assert credentials(ctx, "alice") == [("totp", "active")]

    clock.advance(seconds=30)  # the next code of her app
    fresh = code_now(secret, clock)
    async with console(ctx, clock) as pilot:
        await log_in(pilot, "alice", PASSWORD)
        await enter_code(pilot, fresh)
        await on_screen(pilot, "PreferencesScreen")
    async with console(ctx, clock) as pilot:  # the same code again: a replay
        await log_in(pilot, "alice", PASSWORD)
        await enter_code(pilot, fresh)
        assert screen_name(pilot) == "SecondFactorScreen"
        assert static_text(pilot, "#second-factor-message") == "The code was not accepted."
    assert [event.actor for event in audit_events(ctx, "login.success")] == ["alice", "root"]


async def test_update_refuses_an_unvalidated_configure_now_and_cancel_discards_it(
    ctx: Context, clock: FixedClock, admin: UserView
) -> None:
    add_user(ctx, "alice")
    before = user_row(ctx, "alice")
    async with admin_console(ctx, clock) as pilot:
        await search_and_open(pilot, "alice")
        await choose_type(pilot, MfaType.TOTP)
        await click(pilot, "#configure-now")
        await wait_until(
            pilot, lambda: credentials(ctx, "alice") == [("totp", "verifying")], "the enrollment"
        )
        # Update before a code was validated: refused, saying what is missing; nothing saved.
        await click(pilot, "#update")
        message = static_text(pilot, "#edit-message")
        assert screen_name(pilot) == "UserEditScreen"
        assert "Configure now is not finished" in message and "validate a code" in message
        assert not pilot.app.screen.query_one("#update", Button).disabled
        after = user_row(ctx, "alice")
        assert after is not None and before is not None
        assert (after.mfa_type, after.mfa_status, after.version) == (
            MfaType.NONE,
            MfaStatus.NONE,
            before.version,
        )
        assert credentials(ctx, "alice") == [("totp", "verifying")]  # never active
        # Cancel: the secret shown on screen is deleted, not left verifying.
        await click(pilot, "#cancel")
        await on_screen(pilot, "UsersScreen")
    assert credentials(ctx, "alice") == []
    alice = user_row(ctx, "alice")
    assert alice is not None and (alice.mfa_type, alice.mfa_status, alice.version) == (
        MfaType.NONE,
        MfaStatus.NONE,
        before.version,
    )
    assert [event.action for event in audit_events(ctx)][:2] == [
        "mfa.enrollment.cancel",
        "mfa.enrollment.begin",
    ]


async def test_the_second_of_two_editors_is_refused_and_can_reload(
    ctx: Context, clock: FixedClock, admin: UserView, config: Any
) -> None:
    from mfa_tui.core.context import open_context

    add_user(ctx, "alice", display_name="Alice")
    other_ctx = open_context(config, clock)  # a second console on the same database
    try:
        async with (
            admin_console(ctx, clock) as first,
            admin_console(other_ctx, clock) as second,
        ):
            await search_and_open(first, "alice")
            await search_and_open(second, "alice")
            await fill(first, "#display-name", "Alice Liddell")
            await click(first, "#update")
            await on_screen(first, "UsersScreen")

            await fill(second, "#email", "alice@example.com")
            await click(second, "#update")
            message = static_text(second, "#edit-message")
            assert screen_name(second) == "UserEditScreen"
            assert "Someone else saved 'alice'" in message and "reload" in message
            reload = second.app.screen.query_one("#reload", Button)
            assert reload.display
            await click(second, "#reload")
            await wait_until(
                second,
                lambda: (
                    screen_name(second) == "UserEditScreen"
                    and second.app.screen.query_one("#display-name", Input).value == "Alice Liddell"
                ),
                "the reloaded form",
            )
    finally:
        other_ctx.close()
    alice = user_row(ctx, "alice")
    assert alice is not None
    assert (alice.display_name, alice.email) == ("Alice Liddell", None)  # no lost update


async def test_reload_asks_again_whether_the_agent_may_edit_the_user(
    ctx: Context, clock: FixedClock, admin: UserView
) -> None:
    """A helpdesk agent's form on alice is outdated by an administrator who makes alice an
    administrator: Reload is refused (audited) instead of showing an administrator's record."""
    from mfa_tui.core.access import Actor
    from mfa_tui.core.services.users import GeneralFields, UserService

    add_user(ctx, "helen", role=Role.HELPDESK)
    add_user(ctx, "alice")
    async with console(ctx, clock) as pilot:
        await log_in(pilot, "helen", PASSWORD)
        await on_screen(pilot, "UsersScreen")
        await search_and_open(pilot, "alice")
        users = UserService(ctx)
        alice = users.get("alice")
        users.update_general(Actor.cli(), alice.id, alice.version, GeneralFields(role=Role.ADMIN))
        await fill(pilot, "#email", "alice@example.com")
        await click(pilot, "#update")
        assert "Someone else saved 'alice'" in static_text(pilot, "#edit-message")
        await click(pilot, "#reload")
        await wait_until(
            pilot,
            lambda: (
                "can only act on users with the role user" in static_text(pilot, "#edit-message")
            ),
            "the refusal",
        )
        assert screen_name(pilot) == "UserEditScreen"
        assert pilot.app.screen.user.role == Role.USER  # the old record, not the new one
    [denied] = audit_events(ctx, "denied")
    assert (denied.actor, denied.target) == ("helen", "alice")
    stored = user_row(ctx, "alice")
    assert stored is not None and stored.email is None


async def test_a_new_user_clashing_with_another_save_is_said_without_reload(
    ctx: Context, clock: FixedClock, admin: UserView, monkeypatch: Any
) -> None:
    """Two administrators creating the same username at once: the loser's insert breaks the
    unique index (PostgreSQL lets both pass the check before). A new user has no stored record
    to reload, so the form says to try again and keeps what was typed."""
    from mfa_tui.core.db import SAME_MOMENT
    from mfa_tui.core.errors import ConflictError
    from mfa_tui.core.services.users import UserService

    real_create = UserService.create

    def clash(*_args: Any, **_kwargs: Any) -> None:
        raise ConflictError(SAME_MOMENT)

    monkeypatch.setattr(UserService, "create", clash)
    async with admin_console(ctx, clock) as pilot:
        await pilot.press("n")
        await on_screen(pilot, "UserEditScreen")
        await fill(pilot, "#username", "zoe")
        await click(pilot, "#update")
        await wait_until(
            pilot, lambda: static_text(pilot, "#edit-message") == SAME_MOMENT, "the clash"
        )
        assert not pilot.app.screen.query_one("#reload", Button).display
        assert pilot.app.screen.query_one("#username", Input).value == "zoe"
        monkeypatch.setattr(UserService, "create", real_create)
        await click(pilot, "#update")
        await on_screen(pilot, "UsersScreen")
    assert user_row(ctx, "zoe") is not None
