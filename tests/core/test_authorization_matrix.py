"""SPEC §1 "Who may do what", exhaustively: every role × every action × every kind of target.

The expected answers are written out below from the SPEC's table and text, not derived from
``core/access.py``, so a change to the rules in the code fails here until the SPEC says the same.
Two layers are checked: ``refusal()`` itself (every ``Action``), and the real service calls behind
each screen action on a real database (SQLite and PostgreSQL), where every refusal must leave
exactly one ``denied`` audit event naming the actor, the target and the action.

"Not signed in" has no role: it is an actor with an empty role, which the services must treat as
nobody (the console shows it no Administration at all; see tests/ui/test_authorization_screens.py).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest

from mfa_tui.core.access import Action, Actor, Target, refusal
from mfa_tui.core.audit import AuditRecord, list_events
from mfa_tui.core.context import Context
from mfa_tui.core.errors import PermissionDenied
from mfa_tui.core.kinds import Role
from mfa_tui.core.services.access_pass import AccessPasses
from mfa_tui.core.services.audit_reader import AuditReader
from mfa_tui.core.services.caller_check import CallerCheck
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.reset_requests import ResetRequests
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.user_edit import save_user_edit
from mfa_tui.core.services.users import GeneralFields, UserPager, UserQuery, UserService
from tests.ui.conftest import cheap_password_hashing  # noqa: F401 (autouse: argon2id, cheaply)

ROLES = ["admin", "helpdesk", "user", "anonymous"]
TARGETS = ["user", "helpdesk", "admin", "self", None]  # None: an action on no user

# SPEC §1, per role: the actions allowed, and on which targets. Anything not listed is refused.
A, U, H, S = "admin", "user", "helpdesk", "self"
OTHERS = {U, H, A}
EXPECTED_ACCESS: dict[str, dict[Action, set[str | None]]] = {
    "admin": {
        Action.VIEW_USERS: {*OTHERS, S, None},
        Action.READ_LOGS: {*OTHERS, S, None},
        Action.EDIT_GENERAL: {*OTHERS, S, None},
        Action.MANAGE_ACCOUNTS: {*OTHERS, None},  # never their own role, lock or account
        Action.MANAGE_MFA: {*OTHERS, None},  # own MFA: Preferences only
        Action.SERVER_SETTINGS: {*OTHERS, S, None},
    },
    "helpdesk": {
        Action.VIEW_USERS: {*OTHERS, S, None},
        Action.READ_LOGS: {*OTHERS, S, None},
        Action.EDIT_GENERAL: {U, None},  # role `user` only
        Action.MANAGE_MFA: {U, None},
    },
    "user": {},
    "anonymous": {},
}


def actor_for(role: str, user_id: int | None = 1) -> Actor:
    if role == "anonymous":
        return Actor("(not signed in)", "", None)
    return Actor(f"the-{role}", role, user_id)


def target_for(kind: str | None) -> Target | None:
    if kind is None:
        return None
    return Target(1, "admin") if kind == S else Target(2, kind)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("target", TARGETS)
def test_the_rule_for_every_role_action_and_target(
    role: str, action: Action, target: str | None
) -> None:
    actor = actor_for(role)
    # "self" is a user of the actor's own role.
    aimed = target_for(target)
    if target == S and role != "anonymous":
        aimed = Target(1, role)
    expected = target in EXPECTED_ACCESS[role].get(action, set())
    reason = refusal(actor, action, aimed)
    assert (reason is None) == expected, (role, action.value, target, reason)
    if reason is not None:
        assert reason.endswith(".") and "\n" not in reason  # one sentence for a person


def test_the_cli_may_do_everything_even_to_itself() -> None:
    cli = Actor.cli()
    for action in Action:
        for target in (None, Target(1, "admin"), Target(2, "helpdesk"), Target(3, "user")):
            assert refusal(cli, action, target) is None


# The service calls behind each screen action -------------------------------------------------

Operation = Callable[[Context, Actor, str], object]


def _user_id(ctx: Context, name: str) -> int:
    return UserService(ctx).get(name).id


def _edit(ctx: Context, actor: Actor, name: str, fields: GeneralFields) -> object:
    seen = UserService(ctx).get(name)
    return save_user_edit(ctx, actor, seen.id, seen.version, fields, None)


def _another_role(ctx: Context, name: str) -> str:
    return Role.USER if UserService(ctx).get(name).role == Role.ADMIN else Role.ADMIN


def _approve(ctx: Context, actor: Actor, name: str) -> object:
    ResetRequests(ctx).request(_user_id(ctx, name))
    return ResetRequests(ctx).approve(actor, name, override_reason="matrix")


def _enrollment_begun_by_cli(ctx: Context, name: str) -> str:
    return MfaService(ctx).begin_enrollment(Actor.cli(), name, "totp").credential_id


# name → (operation, the Action SPEC §1 files it under). Services needing a verified caller are
# called with an administrator's override reason; a helpdesk agent is then refused for want of a
# verified caller, which counts as passing the role check (see ``attempt``).
OPERATIONS: dict[str, tuple[Operation, Action]] = {
    "open User edit": (
        lambda c, a, n: UserService(c).open_for_edit(a, _user_id(c, n)),
        Action.EDIT_GENERAL,
    ),
    "edit General fields": (
        lambda c, a, n: _edit(c, a, n, GeneralFields(display_name="Changed")),
        Action.EDIT_GENERAL,
    ),
    "set a password": (
        lambda c, a, n: UserService(c).set_password(a, n, "Matrix-Password-4242"),
        Action.EDIT_GENERAL,
    ),
    "change a role": (
        lambda c, a, n: _edit(c, a, n, GeneralFields(role=_another_role(c, n))),
        Action.MANAGE_ACCOUNTS,
    ),
    "disable a user": (
        lambda c, a, n: _edit(c, a, n, GeneralFields(enabled=False)),
        Action.MANAGE_ACCOUNTS,
    ),
    "delete a user": (lambda c, a, n: UserService(c).delete(a, n), Action.MANAGE_ACCOUNTS),
    "set Type, configure later": (
        lambda c, a, n: MfaService(c).set_type(a, n, "totp", configure_later=True),
        Action.MANAGE_MFA,
    ),
    "configure now": (
        lambda c, a, n: MfaService(c).begin_enrollment(a, n, "totp"),
        Action.MANAGE_MFA,
    ),
    "reset MFA": (
        lambda c, a, n: MfaService(c).reset(a, n, override_reason="matrix"),
        Action.MANAGE_MFA,
    ),
    "unlock": (lambda c, a, n: MfaService(c).unlock(a, n), Action.MANAGE_MFA),
    "approve a reset request": (_approve, Action.MANAGE_MFA),
    "verify a caller": (
        lambda c, a, n: CallerCheck(c).check(a, n, "000000", "factor"),
        Action.MANAGE_MFA,
    ),
    "temporary access pass": (
        lambda c, a, n: AccessPasses(c).create_tap(a, n, override_reason="matrix"),
        Action.MANAGE_MFA,
    ),
    "invitation": (lambda c, a, n: AccessPasses(c).invite(a, n), Action.MANAGE_MFA),
    "see whether the caller is verified": (
        lambda c, a, n: CallerCheck(c).status(a, n),
        Action.MANAGE_MFA,
    ),
    "show an enrollment's QR code again": (
        lambda c, a, n: MfaService(c).enrollment_view(a, _enrollment_begun_by_cli(c, n)),
        Action.MANAGE_MFA,
    ),
    "check an enrollment's code": (
        lambda c, a, n: MfaService(c).confirm_code(a, _enrollment_begun_by_cli(c, n), "000000"),
        Action.MANAGE_MFA,
    ),
}
ON_NOBODY: dict[str, tuple[Callable[[Context, Actor], object], Action]] = {
    "list and search users": (
        lambda c, a: UserPager(c, a).page(UserQuery("t-"), 0, 10, 0, exact=False),
        Action.VIEW_USERS,
    ),
    "count users": (lambda c, a: UserPager(c, a).count(UserQuery()), Action.VIEW_USERS),
    "read the audit log": (lambda c, a: AuditReader(c).events(a, limit=5), Action.READ_LOGS),
    "check the audit chain": (lambda c, a: AuditReader(c).verify(a), Action.READ_LOGS),
    "create a user": (
        lambda c, a: UserService(c).create(a, f"new-{a.role or 'anon'}"),
        Action.MANAGE_ACCOUNTS,
    ),
    "server settings": (
        lambda c, a: SettingsStore(c).set_many(a, {"lockout.attempts": "7"}),
        Action.SERVER_SETTINGS,
    ),
}
NEEDS_A_VERIFIED_CALLER = "Verify the caller first"
# "own MFA: Preferences only, for every role": enrolling oneself is the service call Preferences
# makes (with step-up once a factor works). Administration must not offer it for oneself: the
# screens are checked in tests/ui/test_roles.py.
OWN_MFA = {
    ("configure now", S),
    ("show an enrollment's QR code again", S),
    ("check an enrollment's code", S),
}


def attempt(ctx: Context, actor: Actor, call: Callable[[], object], target: str | None) -> str:
    """'allowed' or 'refused'; a refusal must be audited once, as denied, naming actor and target."""
    before = _denied(ctx)
    try:
        call()
    except PermissionDenied as refused:
        denied = _denied(ctx)[len(before) :]
        if NEEDS_A_VERIFIED_CALLER in str(refused):
            return "allowed"  # past the role check; stopped by the caller check (audited too)
        assert len(denied) == 1, f"refusal not audited once: {refused} → {denied}"
        assert (denied[0].actor, denied[0].target) == (actor.name, target), denied[0]
        assert denied[0].details["reason"] == str(refused)
        return "refused"
    except Exception as error:  # any other answer means the role check let it through
        assert type(error).__name__ in {"InputError", "NotFound"}, repr(error)
    assert _denied(ctx) == before
    return "allowed"


def _denied(ctx: Context) -> list[AuditRecord]:
    with ctx.db.read() as session:
        return list(reversed(list_events(session, text="denied")))


def staff_world(ctx: Context, role: str) -> Actor:
    """The acting person (a real account unless anonymous), a second administrator so the last one
    is never at stake, and the email settings an invitation needs."""
    users = UserService(ctx)
    cli = Actor.cli()
    users.create(cli, "root", role=Role.ADMIN)
    if role == "anonymous":
        return actor_for(role)
    me = users.create(cli, f"the-{role}", role=role, email=f"{role}@example.com")
    return Actor(me.username, me.role, me.id)


def fresh_target(ctx: Context, actor: Actor, kind: str, n: int) -> str:
    if kind == S:
        assert actor.user_id is not None
        return actor.name
    name = f"t-{kind}-{n}"
    UserService(ctx).create(
        Actor.cli(), name, role=kind, email=f"{name}@example.com", mfa_type="totp"
    )
    return name


@pytest.mark.parametrize("role", ROLES)
def test_every_service_action_is_allowed_or_refused_as_spec_says(ctx: Context, role: str) -> None:
    actor = staff_world(ctx, role)
    mismatches: list[str] = []
    n = 0
    kinds = [U, H, A] + ([S] if role != "anonymous" else [])
    for label, (operation, action) in OPERATIONS.items():
        for kind in kinds:
            n += 1
            name = fresh_target(ctx, actor, kind, n)
            got = attempt(ctx, actor, partial(operation, ctx, actor, name), name)
            expected = "allowed" if kind in EXPECTED_ACCESS[role].get(action, set()) else "refused"
            if (label, kind) in OWN_MFA:
                expected = "allowed"  # the same call is Preferences – Multi-factor's
            if got != expected:
                mismatches.append(f"{role} · {label} · on {kind}: {got}, SPEC says {expected}")
    for label, (call, action) in ON_NOBODY.items():
        got = attempt(ctx, actor, partial(call, ctx, actor), None)
        expected = "allowed" if None in EXPECTED_ACCESS[role].get(action, set()) else "refused"
        if got != expected:
            mismatches.append(f"{role} · {label}: {got}, SPEC says {expected}")
    assert mismatches == []
