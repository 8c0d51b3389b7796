"""SPEC §1 "Who may do what" on the real screens: every key on Administration – Users, per role,
on every kind of target (a user, a helpdesk agent, another administrator, oneself).

The expected answer for each (role, action, target) is the table in
``tests/core/test_authorization_matrix.py`` (written out from the SPEC, not from the code). Here
each answer is checked the way a person meets it: an allowed key reaches its dialog and its change
(confirmed with y, a reason typed where an administrator overrides the caller check); a refused key
shows the refusal in one sentence, changes nothing, and leaves exactly one ``denied`` audit event
naming the actor, the target and the action. A plain user and someone not signed in never reach
Administration at all: no key and no command-palette entry gets them there.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from mfa_tui.core.access import Action, Actor
from mfa_tui.core.audit import AuditRecord
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.kinds import Role
from mfa_tui.core.services.caller_check import CallerCheck
from mfa_tui.core.services.reset_requests import ResetRequests
from mfa_tui.core.services.users import UserService, UserView
from tests.core.test_authorization_matrix import EXPECTED_ACCESS
from tests.ui.conftest import (
    ADMIN,
    ADMIN_PASSWORD,
    PASSWORD,
    add_user,
    audit_events,
    code_now,
    console,
    credentials,
    enroll_totp,
    enter_code,
    fill,
    log_in,
    notifications,
    on_screen,
    screen_name,
    search,
    settle,
    user_row,
    wait_until,
)

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

# Who is at the console, and the target of each kind (its username) for that console.
AGENT = {"admin": ADMIN, "helpdesk": "helen"}
TARGETS = {"user": "alice", "helpdesk": "hank", "admin": "ada"}

# Each key on the users screen and the SPEC action it is, in an order where each can do its work:
# the keys that need the factor before the approved reset removes it, delete last.
KEYS: list[tuple[str, Action]] = [
    ("enter", Action.EDIT_GENERAL),
    ("v", Action.MANAGE_MFA),
    ("u", Action.MANAGE_MFA),
    ("t", Action.MANAGE_MFA),
    ("a", Action.MANAGE_MFA),
    (
        "i",
        Action.MANAGE_MFA,
    ),  # after the approved reset: an invitation is for a user with no factor
    ("r", Action.MANAGE_MFA),
    ("delete", Action.MANAGE_ACCOUNTS),
]
# What shows that an allowed key did its work: the screen it opened, or the message it gave.
DONE = {
    "enter": "UserEditScreen",
    "v": "VerifyCallerScreen",
    "u": "{name} unlocked.",
    "t": "ShownOnceScreen",  # the pass, shown once
    "i": "ShownOnceScreen",  # the invitation code (the targets have no email address)
    "a": "Reset approved for {name}: pending user configuration.",
    "r": "MFA reset for {name}: pending user configuration.",
    "delete": "{name} deleted.",
}


def allowed(role: str, action: Action, kind: str) -> bool:
    return kind in EXPECTED_ACCESS[role].get(action, set())


def seed(
    ctx: Context, clock: FixedClock, agent_role: str
) -> tuple[dict[str, UserView], dict[str, str]]:
    """The agent and one target of each kind, each with an authenticator and an open reset
    request; the agent has verified every caller it may act on (so r, t and a go straight to
    their confirmation for helpdesk; an administrator is asked for a reason anyway, see below)."""
    add_user(ctx, ADMIN, role=Role.ADMIN, password=ADMIN_PASSWORD)
    if agent_role == "helpdesk":
        add_user(ctx, AGENT["helpdesk"], role=Role.HELPDESK)
    users = {kind: add_user(ctx, name, role=kind) for kind, name in TARGETS.items()}
    users["self"] = UserService(ctx).get(AGENT[agent_role])
    secrets: dict[str, str] = {}
    for kind, user in users.items():
        secret = secrets[kind] = enroll_totp(ctx, clock, user.username)
        ResetRequests(ctx).request(user.id)
        actor = Actor(AGENT[agent_role], agent_role, users["self"].id)
        if allowed(agent_role, Action.MANAGE_MFA, kind) and agent_role == "helpdesk":
            CallerCheck(ctx).check(actor, user.username, code_now(secret, clock), "factor")
            clock.advance(seconds=30)
    return users, secrets


def new_denials(ctx: Context, before: int) -> list[AuditRecord]:
    denied = audit_events(ctx, "denied")  # newest first
    return denied[: len(denied) - before]


async def sign_in(pilot: Pilot[Any], clock: FixedClock, role: str, secret: str) -> None:
    """Password, then the agent's own authenticator code (staff have MFA too)."""
    await log_in(pilot, AGENT[role], ADMIN_PASSWORD if role == "admin" else PASSWORD)
    await on_screen(pilot, "SecondFactorScreen")
    await enter_code(pilot, code_now(secret, clock))
    clock.advance(seconds=30)
    await on_screen(pilot, "UsersScreen")


async def select_user(pilot: Pilot[Any], username: str) -> None:
    await search(pilot, username)
    table = pilot.app.screen.query_one("#users")
    assert table.selected_user is not None and table.selected_user.username == username  # type: ignore[attr-defined]


async def follow_dialogs(pilot: Pilot[Any]) -> list[str]:
    """Answer whatever an allowed key opens (yes; a reason; close a code shown once) until the
    users screen is back; the dialogs met, in order."""
    met: list[str] = []
    while True:
        await settle(pilot)
        name = screen_name(pilot)
        if name == "UsersScreen":
            return met
        met.append(name)
        if name == "ConfirmScreen":
            await pilot.press("y")
        elif name == "OverrideReasonScreen":
            await fill(pilot, "#reason", "Caller known in person (authorization test)")
            await pilot.press("enter")
        elif name in ("ShownOnceScreen", "UserEditScreen", "VerifyCallerScreen"):
            await pilot.press("escape")
        else:
            raise AssertionError(f"an unexpected screen: {name}")
        assert len(met) < 6, met


@pytest.mark.parametrize("agent_role", ["admin", "helpdesk"])
async def test_every_key_on_every_kind_of_target(
    ctx: Context, clock: FixedClock, agent_role: str
) -> None:
    users, secrets = seed(ctx, clock, agent_role)
    agent = AGENT[agent_role]
    tried = refused = 0
    async with console(ctx, clock) as pilot:
        await sign_in(pilot, clock, agent_role, secrets["self"])
        for kind in ("user", "helpdesk", "admin", "self"):
            target = users[kind].username
            for key, action in KEYS:
                expected = allowed(agent_role, action, kind)
                denied_before = len(audit_events(ctx, "denied"))
                said_before = len(notifications(pilot))
                before = (user_row(ctx, target), credentials(ctx, target))
                await select_user(pilot, target)
                await pilot.press(key)
                await settle(pilot)
                met = await follow_dialogs(pilot)
                said = notifications(pilot)[said_before:]
                denied = new_denials(ctx, denied_before)
                case = f"{agent_role} presses {key} on {kind} {target}: met {met}, said {said}"
                tried += 1
                if expected:
                    assert denied == [], case
                    assert DONE[key].format(name=target) in [*met, *said], case
                    if key == "delete":
                        assert user_row(ctx, target) is None, case
                    continue
                refused += 1
                assert len(denied) == 1, case
                [event] = denied
                assert (event.actor, event.target) == (agent, target), case
                assert event.details["action"] == action.value, case
                assert str(event.details["reason"]) in said, case
                assert not set(met) - {"ConfirmScreen"}, case  # refused before any real dialog
                assert (user_row(ctx, target), credentials(ctx, target)) == before, case
    print(
        f"\nscreen matrix, {agent_role}: {tried} key presses on 4 kinds of target, {refused} refused"
    )


async def test_server_settings_logs_and_new_user_by_role(ctx: Context, clock: FixedClock) -> None:
    """The keys that act on no user: s (Server Settings), l (Logs), n (a new user)."""
    _, helpdesk_secrets = seed(ctx, clock, "helpdesk")
    secrets = {"admin": enroll_totp(ctx, clock, ADMIN), "helpdesk": helpdesk_secrets["self"]}
    for agent_role in ("admin", "helpdesk"):
        async with console(ctx, clock) as pilot:
            await sign_in(pilot, clock, agent_role, secrets[agent_role])
            denied_before = len(audit_events(ctx, "denied"))
            await pilot.press("s")
            await settle(pilot)
            if allowed(agent_role, Action.SERVER_SETTINGS, None):
                assert screen_name(pilot) == "ServerSettingsScreen"
                await pilot.press("escape")
            else:
                await wait_until(pilot, lambda: notifications(pilot), "the refusal")
                assert screen_name(pilot) == "UsersScreen"
                [event] = new_denials(ctx, denied_before)
                assert event.details["action"] == Action.SERVER_SETTINGS.value
                assert notifications(pilot)[-1] == event.details["reason"]
            await on_screen(pilot, "UsersScreen")
            before_n = len(audit_events(ctx, "denied"))
            await pilot.press("n")
            await settle(pilot)
            if allowed(agent_role, Action.MANAGE_ACCOUNTS, None):
                await on_screen(pilot, "UserEditScreen")  # an empty form for a new user
                await pilot.press("escape")
            else:
                await wait_until(pilot, lambda: new_denials(ctx, before_n), "the refusal")  # noqa: B023
                assert screen_name(pilot) == "UsersScreen"
                [event] = new_denials(ctx, before_n)
                assert event.details["action"] == Action.MANAGE_ACCOUNTS.value
                assert notifications(pilot)[-1] == event.details["reason"]
            await on_screen(pilot, "UsersScreen")
            await pilot.press("l")
            await on_screen(pilot, "AuditLogScreen")  # both staff roles read the log
            await pilot.press("escape")
            await on_screen(pilot, "UsersScreen")


async def test_nobody_signed_in_reaches_nothing(ctx: Context, clock: FixedClock) -> None:
    add_user(ctx, ADMIN, role=Role.ADMIN, password=ADMIN_PASSWORD)
    async with console(ctx, clock) as pilot:
        assert screen_name(pilot) == "LoginScreen"
        for key in ("l", "s", "n", "u", "r", "t", "i", "v", "a", "delete", "p", "x", "ctrl+s"):
            pilot.app.set_focus(None)
            await pilot.press(key)
            await settle(pilot)
            assert screen_name(pilot) == "LoginScreen", key
        commands = {command.title for command in pilot.app.get_system_commands(pilot.app.screen)}
        staff_only = {"Administration – Users", "Logs", "Server Settings – Multi-factor"}
        assert not (staff_only | {"Preferences – Multi-factor", "Log out"}) & commands
        assert pilot.app.signed_in is None  # type: ignore[attr-defined]
