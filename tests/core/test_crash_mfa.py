"""SIGKILL at every database step of an enrollment and of User edit's Update, on both databases.

Each kill point runs in a fresh child process (``tests.helpers.kill_points``) acting on its own
user, who already logs in with a working authenticator. The child is killed just before its N-th
SQL statement or COMMIT — so inside a transaction as well as between the steps — until a child
runs to the end. After every kill the database must be consistent: no active unverified secret,
the user either fully changed or untouched, the previous factor still working when untouched; the
audit chain intact at the end; and doing the same thing again must work.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from mfa_tui.core.access import Actor
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.config import Config
from mfa_tui.core.context import Context, open_context
from mfa_tui.core.models import BackupCode, CredentialState, MfaCredential
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.user_edit import MfaChoice, save_user_edit
from mfa_tui.core.services.users import GeneralFields, UserService
from tests.core.test_mfa_service import code_now, enroll, secret_of
from tests.helpers.kill_points import Kill, every_point

pytestmark = pytest.mark.slow
CHANGED_NAME = "Changed by Update"
Send = Callable[[Any], None]
Arm = Callable[[], None]


# The steps under test, as the child runs them ------------------------------------------------------


def _new_totp(ctx: Context, actor: Actor, username: str, send: Send) -> str:
    """begin_enrollment → confirm_code; the new secret goes to the parent as soon as it exists."""
    service = MfaService(ctx)
    start = service.begin_enrollment(actor, username, "totp")
    secret = secret_of(start)
    send(secret)
    assert service.confirm_code(actor, start.credential_id, code_now(secret, ctx.clock))  # type: ignore[arg-type]
    return start.credential_id


def enrollment(ctx: Context, username: str, send: Send, arm: Arm) -> None:
    """Configure now, then backup codes: begin → confirm → activate → generate_backup_codes."""
    actor, service = Actor.cli(), MfaService(ctx)
    arm()
    credential_id = _new_totp(ctx, actor, username, send)
    service.activate(actor, username, credential_id)
    service.generate_backup_codes(actor, username)


def update_configure_now(ctx: Context, username: str, send: Send, arm: Arm) -> None:
    """User edit: a new display name and a new authenticator, saved by one Update.

    Its begin and confirm steps are the enrollment's (killed there): the points are the Update's."""
    actor, user = Actor.cli(), UserService(ctx).get(username)
    credential_id = _new_totp(ctx, actor, username, send)
    arm()
    save_user_edit(
        ctx,
        actor,
        user.id,
        user.version,
        GeneralFields(display_name=CHANGED_NAME),
        MfaChoice("totp", configure_later=False, credential_id=credential_id),
    )


def update_configure_later(ctx: Context, username: str, send: Send, arm: Arm) -> None:
    """User edit: a new display name and Type Email with Configure later, saved by one Update."""
    actor, user = Actor.cli(), UserService(ctx).get(username)
    arm()
    save_user_edit(
        ctx,
        actor,
        user.id,
        user.version,
        GeneralFields(display_name=CHANGED_NAME),
        MfaChoice("email", configure_later=True),
    )


SCENARIOS: dict[str, Callable[[Context, str, Send, Arm], None]] = {
    "enrollment": enrollment,
    "update, configure now": update_configure_now,
    "update, configure later": update_configure_later,
}


def in_child(
    config: Config,
    at: datetime,
    scenario: str,
    username: str,
    *,
    arm: Callable[[], None],
    send: Send,
) -> None:
    """The child: open the database like any process would, then arm the kill points."""
    with closing(open_context(config, FixedClock(at))) as ctx:
        SCENARIOS[scenario](ctx, username, send, arm)


# What the parent checks after each kill ------------------------------------------------------------


def _credentials(ctx: Context, username: str) -> list[MfaCredential]:
    user_id = UserService(ctx).get(username).id
    with ctx.db.read() as session:
        return list(session.exec(select(MfaCredential).where(MfaCredential.user_id == user_id)))


def _backup_codes(ctx: Context, username: str) -> int:
    user_id = UserService(ctx).get(username).id
    with ctx.db.read() as session:
        return len(session.exec(select(BackupCode).where(BackupCode.user_id == user_id)).all())


def _logs_in(ctx: Context, username: str, secret: bytes) -> bool:
    return MfaService(ctx).verify(username, code_now(secret, ctx.clock)).method == "totp"


def assert_consistent(
    scenario: str, ctx: Context, username: str, old: tuple[str, bytes], kill: Kill
) -> bool:
    """The invariants after a crash; returns whether the change was committed."""
    credentials = _credentials(ctx, username)
    active = [c for c in credentials if c.state == CredentialState.ACTIVE]
    where = f"{scenario} killed at point {kill.point} ({kill.label})"
    assert len(active) == 1, where  # never zero: nobody is locked out mid-change
    assert all(c.verified_at is not None for c in active), where
    assert len(credentials) - len(active) <= 1, where  # at most one enrollment in progress
    user = UserService(ctx).get(username)
    new_secret = kill.sent[0] if kill.sent else None
    if scenario == "update, configure later":
        changed = user.display_name == CHANGED_NAME
        expected = ("email", "pending") if changed else ("totp", "configured")
        assert (user.mfa_type, user.mfa_status) == expected, where
        assert active[0].id == old[0], where  # the working factor stays until the new one is proven
    else:
        changed = active[0].id != old[0]
        assert (user.mfa_type, user.mfa_status) == ("totp", "configured"), where
        if scenario == "update, configure now":  # General and Multifactor in one transaction
            assert (user.display_name == CHANGED_NAME) == changed, where
        else:  # backup codes come in their own step: all of them or none
            assert _backup_codes(ctx, username) in ({0, 10} if changed else {0}), where
    # Untouched: the old factor works (and the unproven new one does not); changed: the reverse.
    if new_secret is not None:
        assert _logs_in(ctx, username, new_secret) == (
            changed and scenario != "update, configure later"
        ), where
    assert _logs_in(ctx, username, old[1]) == (
        not changed or scenario == "update, configure later"
    ), where
    return changed


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_a_kill_at_any_step_leaves_the_user_untouched_or_fully_changed(
    ctx: Context, config: Config, clock: FixedClock, scenario: str
) -> None:
    actor = Actor.cli()
    SettingsStore(ctx).set_many(actor, {"mfa.supported": "totp,email"})
    child_time = clock.now() + timedelta(seconds=30)  # the seeding used up the first step
    check = replace(ctx, clock=FixedClock(clock.now() + timedelta(seconds=90)))
    retry = replace(ctx, clock=FixedClock(clock.now() + timedelta(seconds=150)))
    olds: dict[str, tuple[str, bytes]] = {}

    def seed(point: int) -> tuple[Any, ...]:
        username = f"u{point:03d}"
        UserService(ctx).create(
            actor, username, display_name="Before", email=f"{username}@example.com"
        )
        secret = enroll(ctx, clock, actor, username)
        olds[username] = (_credentials(ctx, username)[0].id, secret)
        return (config, child_time, scenario, username)

    outcomes = {True: 0, False: 0}
    kills = 0
    for kill in every_point(__name__, in_child, seed):
        username = f"u{kill.point:03d}"
        changed = assert_consistent(scenario, check, username, olds[username], kill)
        assert changed or kill.label is not None, "a child that finished must have saved"
        outcomes[changed] += 1
        kills += kill.label is not None
        # Once the fault is gone, the same thing again works.
        SCENARIOS[scenario](retry, username, lambda _value: None, lambda: None)
        user = UserService(ctx).get(username)
        assert user.display_name == (CHANGED_NAME if scenario != "enrollment" else "Before")
        assert len(_credentials(ctx, username)) == 1  # the retry left no enrollment behind
    with ctx.db.read() as session:  # append-only: a link broken by any kill is still there
        report = ctx.audit.verify(session)
    assert report.ok, report
    print(
        f"\n{scenario} on {config.database_url.split(':')[0]}: {kills} kill points, "
        f"{outcomes[False]} left the user untouched, {outcomes[True] - 1} fully changed"
    )
    assert kills >= 8 and outcomes[False] and outcomes[True]
