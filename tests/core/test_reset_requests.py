""" "Lost your device?" requests (ResetRequests): filed once, decided by staff, told to the user once.

Approving resets the user's MFA to pending (type kept, factor and backup codes removed); denying
changes nothing. Helpdesk staff decide for role user only; every decision and refusal is audited.
Both databases.
"""

from __future__ import annotations

import pyotp
import pytest
from sqlalchemy import func
from sqlmodel import select

from mfa_tui.core.access import Actor
from mfa_tui.core.audit import list_events
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.errors import InputError, NotFound, PermissionDenied
from mfa_tui.core.models import MfaCredential, ResetRequest
from mfa_tui.core.services.caller_check import CallerCheck
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.reset_requests import ResetRequests
from mfa_tui.core.services.users import UserService

# Each user's authenticator, as the phone that scanned the QR code would hold it.
AUTHENTICATORS: dict[str, pyotp.TOTP] = {}


def add(ctx: Context, clock: FixedClock, name: str, role: str = "user") -> int:
    """A user with a working authenticator and backup codes."""
    user_id = UserService(ctx).create(Actor.cli(), name, role=role).id
    service = MfaService(ctx)
    start = service.begin_enrollment(Actor.cli(), name, "totp")
    assert start.provisioning_uri is not None
    AUTHENTICATORS[name] = pyotp.parse_uri(start.provisioning_uri)  # type: ignore[assignment]
    code = AUTHENTICATORS[name].at(clock.now())
    assert service.confirm_code(Actor.cli(), start.credential_id, code)
    service.activate(Actor.cli(), name, start.credential_id)
    service.generate_backup_codes(Actor.cli(), name)
    return user_id


def staff(ctx: Context, name: str, role: str) -> Actor:
    user_id = UserService(ctx).create(Actor.cli(), name, role=role).id
    return Actor(name=name, role=role, user_id=user_id)


def events(ctx: Context, action: str) -> list[tuple[str, str | None]]:
    with ctx.db.read() as session:
        return [
            (event.actor, event.target)
            for event in list_events(session, text=action)
            if event.action == action
        ]


def credentials(ctx: Context, user_id: int) -> int:
    with ctx.db.read() as session:
        return session.exec(
            select(func.count()).select_from(MfaCredential).where(MfaCredential.user_id == user_id)
        ).one()


def statuses(ctx: Context, user_id: int) -> list[str]:
    with ctx.db.read() as session:
        return sorted(
            session.exec(select(ResetRequest.status).where(ResetRequest.user_id == user_id)).all()
        )


@pytest.fixture
def requests(ctx: Context) -> ResetRequests:
    return ResetRequests(ctx)


def test_a_request_is_filed_once(ctx: Context, clock: FixedClock, requests: ResetRequests) -> None:
    alice = add(ctx, clock, "alice")
    assert not requests.has_open_request(alice)

    assert requests.request(alice) is True
    assert requests.request(alice) is False  # the second press does not queue twice
    assert requests.has_open_request(alice)
    assert statuses(ctx, alice) == ["pending"]
    assert events(ctx, "reset_request.create") == [("alice", "alice")]
    assert credentials(ctx, alice) == 1  # nothing changes before staff decide
    assert UserService(ctx).get("alice").reset_requested


def test_approval_resets_to_pending_and_the_user_is_told_once(
    ctx: Context, clock: FixedClock, requests: ResetRequests
) -> None:
    alice = add(ctx, clock, "alice")
    root = staff(ctx, "root", "admin")
    requests.request(alice)

    requests.approve(root, "alice", override_reason="called from the desk phone, known voice")
    view = UserService(ctx).get("alice")
    assert (view.mfa_type, view.mfa_status) == ("totp", "pending")
    assert credentials(ctx, alice) == 0
    assert MfaService(ctx).backup_codes_left("alice") == 0
    assert not view.reset_requested and statuses(ctx, alice) == ["approved"]
    assert events(ctx, "reset_request.approved") == [("root", "alice")]
    assert events(ctx, "mfa.reset") == [("root", "alice")]

    decision = requests.decision_to_tell(alice)
    assert decision is not None and decision.status == "approved"
    assert (decision.decided_by, decision.decided_at) == ("root", clock.now())
    assert "approved" in decision.message
    assert requests.decision_to_tell(alice) is None

    with pytest.raises(InputError, match="no open reset request"):
        requests.approve(root, "alice", override_reason="again")
    # A new request can be filed later: only one may be open at a time.
    assert requests.request(alice) is True
    assert statuses(ctx, alice) == ["approved", "pending"]


def test_denial_changes_nothing_and_is_told(
    ctx: Context, clock: FixedClock, requests: ResetRequests
) -> None:
    bob = add(ctx, clock, "bob")
    root = staff(ctx, "root", "admin")
    requests.request(bob)

    requests.deny(root, "bob")
    view = UserService(ctx).get("bob")
    assert (view.mfa_type, view.mfa_status) == ("totp", "configured")
    assert credentials(ctx, bob) == 1 and MfaService(ctx).backup_codes_left("bob") == 10
    assert events(ctx, "reset_request.denied") == [("root", "bob")]
    assert events(ctx, "mfa.reset") == []

    decision = requests.decision_to_tell(bob)
    assert decision is not None and decision.status == "denied"
    assert "denied" in decision.message
    assert requests.decision_to_tell(bob) is None


def test_helpdesk_decides_for_role_user_only(
    ctx: Context, clock: FixedClock, requests: ResetRequests
) -> None:
    carol = add(ctx, clock, "carol")
    hd2 = add(ctx, clock, "hd2", role="helpdesk")
    boss = add(ctx, clock, "boss", role="admin")
    for user_id in (carol, hd2, boss):
        requests.request(user_id)
    helpdesk = staff(ctx, "hd", "helpdesk")

    for name in ("hd2", "boss"):
        with pytest.raises(PermissionDenied, match="role user"):
            requests.approve(helpdesk, name)
        with pytest.raises(PermissionDenied):
            requests.deny(helpdesk, name)
    assert statuses(ctx, hd2) == ["pending"] and statuses(ctx, boss) == ["pending"]
    assert credentials(ctx, hd2) == 1 and credentials(ctx, boss) == 1
    assert events(ctx, "denied") == [("hd", name) for name in ("boss", "boss", "hd2", "hd2")]

    # The request came from a session that proved only the password: the caller is verified.
    with pytest.raises(PermissionDenied, match="Verify the caller first"):
        requests.approve(helpdesk, "carol")
    with pytest.raises(PermissionDenied, match="Verify the caller first"):
        requests.approve(helpdesk, "carol", override_reason="helpdesk cannot override")
    assert statuses(ctx, carol) == ["pending"] and credentials(ctx, carol) == 1
    clock.advance(seconds=30)
    code = AUTHENTICATORS["carol"].at(clock.now())
    assert CallerCheck(ctx).check(helpdesk, "carol", code, "factor").status.verified
    requests.approve(helpdesk, "carol")
    assert UserService(ctx).get("carol").mfa_status == "pending"
    with ctx.db.read() as session:
        [reset] = [e for e in list_events(session, text="mfa.reset") if e.action == "mfa.reset"]
    assert (reset.details["caller"], reset.details["caller_method"]) == ("verified", "factor")


def test_nobody_decides_their_own_request_and_users_decide_none(
    ctx: Context, clock: FixedClock, requests: ResetRequests
) -> None:
    boss = add(ctx, clock, "boss", role="admin")
    carol = add(ctx, clock, "carol")
    requests.request(boss)
    requests.request(carol)

    with pytest.raises(PermissionDenied, match="Preferences"):
        requests.approve(Actor(name="boss", role="admin", user_id=boss), "boss")
    with pytest.raises(PermissionDenied, match="Only staff"):
        requests.approve(Actor(name="carol", role="user", user_id=carol), "carol")
    assert statuses(ctx, boss) == ["pending"] and statuses(ctx, carol) == ["pending"]

    with pytest.raises(NotFound):
        requests.approve(Actor.cli(), "nobody")
    requests.approve(Actor.cli(), "boss")  # the CLI is trusted like root
    assert UserService(ctx).get("boss").mfa_status == "pending"
