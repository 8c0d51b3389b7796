"""Step-up (SPEC §2): changing one's own factor needs it proven within the last five minutes.

``MfaService.begin_enrollment`` (change type, reconfigure) and ``generate_backup_codes`` refuse a
user acting on themselves with ``StepUpRequired`` when ``Actor.proved_at`` is missing or older
than five minutes, and change nothing when they refuse. Both databases, frozen clock.
"""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from sqlmodel import select

from mfa_tui.core.access import STEP_UP_WINDOW, Actor
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.errors import PermissionDenied
from mfa_tui.core.models import BackupCode, MfaCredential
from mfa_tui.core.services.mfa import MfaService, StepUpRequired
from mfa_tui.core.services.users import UserService

FIVE_MINUTES = timedelta(minutes=5)
ONE_SECOND = timedelta(seconds=1)


def state(ctx: Context, user_id: int) -> tuple[list[tuple[str, str]], list[str]]:
    """The user's credentials (id, state) and backup code hashes."""
    with ctx.db.read() as session:
        credentials = session.exec(
            select(MfaCredential.id, MfaCredential.state).where(MfaCredential.user_id == user_id)
        ).all()
        codes = session.exec(
            select(BackupCode.code_hash).where(BackupCode.user_id == user_id)
        ).all()
    return sorted(tuple(row) for row in credentials), sorted(codes)


@pytest.fixture
def alice(ctx: Context, clock: FixedClock) -> int:
    """A user with a working authenticator and a set of backup codes."""
    user_id = UserService(ctx).create(Actor.cli(), "alice").id
    service = MfaService(ctx)
    start = service.begin_enrollment(Actor.cli(), "alice", "totp")
    assert start.provisioning_uri is not None
    code = pyotp.parse_uri(start.provisioning_uri).at(clock.now())
    assert service.confirm_code(Actor.cli(), start.credential_id, code)
    service.activate(Actor.cli(), "alice", start.credential_id)
    service.generate_backup_codes(Actor.cli(), "alice")
    clock.advance(seconds=30)
    return user_id


def herself(user_id: int, proved_at: object = None) -> Actor:
    return Actor(name="alice", role="user", user_id=user_id, proved_at=proved_at)  # type: ignore[arg-type]


def test_a_proof_lasts_five_minutes(clock: FixedClock) -> None:
    now = clock.now()
    assert STEP_UP_WINDOW == FIVE_MINUTES
    assert not Actor("alice", "user", 1).has_recent_proof(now)
    assert Actor("alice", "user", 1, proved_at=now).has_recent_proof(now)
    assert Actor("alice", "user", 1, proved_at=now - FIVE_MINUTES).has_recent_proof(now)
    assert not Actor(
        "alice", "user", 1, proved_at=now - FIVE_MINUTES - ONE_SECOND
    ).has_recent_proof(now)


@pytest.mark.parametrize("proof_age", [None, FIVE_MINUTES + ONE_SECOND, timedelta(hours=2)])
def test_changing_or_reconfiguring_ones_own_factor_needs_a_recent_proof(
    ctx: Context, clock: FixedClock, alice: int, proof_age: timedelta | None
) -> None:
    proved_at = None if proof_age is None else clock.now() - proof_age
    before = state(ctx, alice)
    service = MfaService(ctx)

    with pytest.raises(StepUpRequired, match="Prove your current second factor first"):
        service.begin_enrollment(herself(alice, proved_at), "alice", "totp")
    with pytest.raises(StepUpRequired):
        service.generate_backup_codes(herself(alice, proved_at), "alice")

    assert state(ctx, alice) == before  # no verifying secret, the same backup codes
    assert issubclass(StepUpRequired, PermissionDenied)  # the CLI's and screens' "refused"


def test_a_recent_proof_lets_her_change_it(ctx: Context, clock: FixedClock, alice: int) -> None:
    service = MfaService(ctx)
    old_credentials, old_codes = state(ctx, alice)

    codes = service.generate_backup_codes(herself(alice, clock.now() - FIVE_MINUTES), "alice")
    assert len(codes) == 10
    assert state(ctx, alice)[1] != old_codes

    start = service.begin_enrollment(
        herself(alice, clock.now() - timedelta(minutes=1)), "alice", "totp"
    )
    credentials, _ = state(ctx, alice)
    assert sorted(s for _, s in credentials) == ["active", "verifying"]
    assert (start.credential_id, "verifying") in credentials
    assert old_credentials[0] in credentials  # the working factor is untouched so far


def test_no_proof_is_asked_before_there_is_a_factor_to_prove(
    ctx: Context, clock: FixedClock
) -> None:
    """A first enrollment (configure later, or after a reset) has nothing to re-prove."""
    bob = UserService(ctx).create(Actor.cli(), "bob", mfa_type="totp").id
    start = MfaService(ctx).begin_enrollment(
        Actor(name="bob", role="user", user_id=bob), "bob", "totp"
    )
    assert start.provisioning_uri is not None


def test_staff_acting_on_someone_else_need_no_step_up(
    ctx: Context, clock: FixedClock, alice: int
) -> None:
    root = UserService(ctx).create(Actor.cli(), "root", role="admin").id
    admin = Actor(name="root", role="admin", user_id=root)  # never proved anything
    assert MfaService(ctx).begin_enrollment(admin, "alice", "totp").provisioning_uri
    assert len(MfaService(ctx).generate_backup_codes(admin, "alice")) == 10
    assert len(MfaService(ctx).generate_backup_codes(Actor.cli(), "alice")) == 10
