"""MfaService on both databases: configure later/now, enrollment, replay refusal, reset, backup codes, access."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import func
from sqlmodel import select

from mfa_tui.core import backup_codes, otp
from mfa_tui.core.access import Actor
from mfa_tui.core.audit import AuditRecord, list_events
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.errors import ConflictError, InputError, NotFound, PermissionDenied
from mfa_tui.core.factors import EnrollmentStart
from mfa_tui.core.models import BackupCode, MfaCredential, Role
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import GeneralFields, UserService

PARAMS = otp.TotpParameters()


def secret_of(start: EnrollmentStart) -> bytes:
    assert start.provisioning_uri is not None
    encoded = parse_qs(urlparse(start.provisioning_uri).query)["secret"][0]
    return base64.b32decode(encoded + "=" * (-len(encoded) % 8))


def code_now(secret: bytes, clock: FixedClock) -> str:
    return otp.code_at(secret, clock.now().timestamp(), PARAMS)


def wrong_code(secret: bytes, clock: FixedClock) -> str:
    """A well-formed code that matches no time-step in the drift window."""
    now = clock.now().timestamp()
    window = {otp.code_at(secret, now + 30 * shift, PARAMS) for shift in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in window)


def credentials(ctx: Context, username: str) -> list[tuple[str, str]]:
    """(id, state) of the user's credentials."""
    user_id = UserService(ctx).get(username).id
    with ctx.db.read() as session:
        rows = session.exec(select(MfaCredential).where(MfaCredential.user_id == user_id)).all()
    return sorted((row.id, row.state) for row in rows)


def backup_code_rows(ctx: Context, username: str) -> int:
    user_id = UserService(ctx).get(username).id
    with ctx.db.read() as session:
        return session.exec(
            select(func.count()).select_from(BackupCode).where(BackupCode.user_id == user_id)
        ).one()


def events(ctx: Context, action: str) -> list[AuditRecord]:
    with ctx.db.read() as session:
        return [e for e in list_events(session, text=action) if e.action == action]


def enroll(ctx: Context, clock: FixedClock, actor: Actor, username: str) -> bytes:
    """Configure now: begin, confirm the current code, activate. Returns the raw secret."""
    service = MfaService(ctx)
    start = service.begin_enrollment(actor, username, "totp")
    secret = secret_of(start)
    assert service.confirm_code(actor, start.credential_id, code_now(secret, clock))
    service.activate(actor, username, start.credential_id)
    return secret


@pytest.fixture
def users(ctx: Context, cli_actor: Actor) -> UserService:
    service = UserService(ctx)
    service.create(cli_actor, "bob", email="bob@example.com")
    return service


def test_configure_later_makes_the_user_pending_without_a_credential(
    ctx: Context, cli_actor: Actor, users: UserService
) -> None:
    MfaService(ctx).set_type(cli_actor, "bob", "totp", configure_later=True)

    bob = users.get("bob")
    assert (bob.mfa_type, bob.mfa_status) == ("totp", "pending")
    assert credentials(ctx, "bob") == []
    assert not MfaService(ctx).verify("bob", "123456").accepted
    [event] = events(ctx, "mfa.set_type")
    assert event.target == "bob" and event.actor == cli_actor.name
    # Configuring now goes through the code flow, never through set_type.
    with pytest.raises(InputError):
        MfaService(ctx).set_type(cli_actor, "bob", "totp", configure_later=False)
    assert users.get("bob").mfa_status == "pending"


def test_enrollment_state_machine(
    ctx: Context, clock: FixedClock, cli_actor: Actor, users: UserService
) -> None:
    service = MfaService(ctx)
    service.set_type(cli_actor, "bob", "totp", configure_later=True)
    start = service.begin_enrollment(cli_actor, "bob", "totp")
    secret = secret_of(start)
    assert len(secret) == otp.SECRET_BYTES
    assert start.manual_secret == otp.grouped_secret(secret)
    assert credentials(ctx, "bob") == [(start.credential_id, "verifying")]
    # Starting over replaces the unfinished enrollment instead of piling them up.
    abandoned = start
    start = service.begin_enrollment(cli_actor, "bob", "totp")
    secret = secret_of(start)
    assert credentials(ctx, "bob") == [(start.credential_id, "verifying")]
    with pytest.raises(NotFound):
        service.confirm_code(cli_actor, abandoned.credential_id, code_now(secret, clock))

    # A verifying secret never counts for login, even with its correct code.
    outcome = service.verify("bob", code_now(secret, clock))
    assert (outcome.accepted, outcome.reason) == (False, "wrong_code")
    assert users.get("bob").mfa_status == "pending"

    # The QR can be shown again while pending: same secret.
    assert secret_of(service.enrollment_view(cli_actor, start.credential_id)) == secret

    assert not service.confirm_code(cli_actor, start.credential_id, wrong_code(secret, clock))
    assert service.confirm_code(cli_actor, start.credential_id, code_now(secret, clock))
    service.activate(cli_actor, "bob", start.credential_id)

    bob = users.get("bob")
    assert (bob.mfa_type, bob.mfa_status) == ("totp", "configured")
    assert credentials(ctx, "bob") == [(start.credential_id, "active")]
    assert [e.action for e in events(ctx, "mfa.configured")] == ["mfa.configured"]


def test_a_cancelled_enrollment_is_deleted(
    ctx: Context, clock: FixedClock, cli_actor: Actor, users: UserService
) -> None:
    service = MfaService(ctx)
    start = service.begin_enrollment(cli_actor, "bob", "totp")
    assert service.confirm_code(cli_actor, start.credential_id, code_now(secret_of(start), clock))
    service.cancel_enrollment(cli_actor, start.credential_id)

    assert credentials(ctx, "bob") == []
    with pytest.raises(InputError):
        service.activate(cli_actor, "bob", start.credential_id)
    assert users.get("bob").mfa_status == "none"


def test_verify_accepts_each_time_step_once(
    ctx: Context, clock: FixedClock, cli_actor: Actor, users: UserService
) -> None:
    service = MfaService(ctx)
    secret = enroll(ctx, clock, cli_actor, "bob")

    # The code used to confirm the enrollment is already spent.
    assert service.verify("bob", code_now(secret, clock)).reason == "wrong_code"

    clock.advance(seconds=30)
    first = code_now(secret, clock)
    outcome = service.verify("bob", first)
    assert (outcome.accepted, outcome.reason, outcome.method) == (True, "accepted", "totp")

    replay = service.verify("bob", first)
    assert (replay.accepted, replay.reason) == (False, "wrong_code")

    clock.advance(seconds=30)
    # The previous step's code is inside the drift window...
    step_now = otp.time_step(clock.now().timestamp(), PARAMS.period)
    assert otp.matching_step(secret, first, clock.now().timestamp(), PARAMS, 1) == step_now - 1
    # ...but once a later step is accepted, an earlier one is refused.
    assert service.verify("bob", code_now(secret, clock)).accepted
    assert not service.verify("bob", first).accepted
    assert len(events(ctx, "verify.accepted")) == 2

    # An unknown user gets the same answer as a wrong code.
    unknown, wrong = service.verify("nobody", "123456"), service.verify("bob", "12345x")
    assert not unknown.accepted and not wrong.accepted
    assert unknown.message == wrong.message


def test_an_earlier_step_is_refused_after_a_later_one(
    ctx: Context, clock: FixedClock, cli_actor: Actor, users: UserService
) -> None:
    service = MfaService(ctx)
    secret = enroll(ctx, clock, cli_actor, "bob")
    clock.advance(seconds=60)
    now = clock.now().timestamp()
    earlier = otp.code_at(secret, now - 30, PARAMS)
    later = otp.code_at(secret, now + 30, PARAMS)  # a phone running a little fast: within drift

    assert service.verify("bob", later).accepted
    assert not service.verify("bob", earlier).accepted
    assert not service.verify("bob", code_now(secret, clock)).accepted


def test_activate_without_a_validated_code_is_refused(
    ctx: Context, cli_actor: Actor, users: UserService
) -> None:
    service = MfaService(ctx)
    start = service.begin_enrollment(cli_actor, "bob", "totp")

    with pytest.raises(InputError) as refused:
        service.activate(cli_actor, "bob", start.credential_id)

    assert "code" in str(refused.value)
    assert users.get("bob").mfa_status == "none"
    assert credentials(ctx, "bob") == [(start.credential_id, "verifying")]


def test_activate_with_a_stale_version_is_a_conflict(
    ctx: Context, clock: FixedClock, cli_actor: Actor, users: UserService
) -> None:
    service = MfaService(ctx)
    seen = users.get("bob")
    start = service.begin_enrollment(cli_actor, "bob", "totp")
    assert service.confirm_code(cli_actor, start.credential_id, code_now(secret_of(start), clock))
    # Another staff member saves bob meanwhile.
    users.update_general(cli_actor, seen.id, seen.version, GeneralFields(display_name="Bob B."))

    with pytest.raises(ConflictError):
        service.activate(cli_actor, "bob", start.credential_id, expected_version=seen.version)

    bob = users.get("bob")
    assert (bob.display_name, bob.mfa_status) == ("Bob B.", "none")
    assert credentials(ctx, "bob") == [(start.credential_id, "verifying")]
    service.activate(cli_actor, "bob", start.credential_id, expected_version=bob.version)
    assert users.get("bob").mfa_status == "configured"


def test_the_old_factor_works_until_the_new_one_is_activated(
    ctx: Context, clock: FixedClock, cli_actor: Actor, users: UserService
) -> None:
    service = MfaService(ctx)
    old = enroll(ctx, clock, cli_actor, "bob")
    [(old_id, _)] = credentials(ctx, "bob")

    service.set_type(cli_actor, "bob", "totp", configure_later=True)
    assert users.get("bob").mfa_status == "pending"
    assert credentials(ctx, "bob") == [(old_id, "active")]
    clock.advance(seconds=30)
    assert service.verify("bob", code_now(old, clock)).accepted

    start = service.begin_enrollment(cli_actor, "bob", "totp")
    new = secret_of(start)
    assert new != old
    clock.advance(seconds=30)
    assert service.verify("bob", code_now(old, clock)).accepted
    assert not service.verify("bob", code_now(new, clock)).accepted

    clock.advance(seconds=30)
    assert service.confirm_code(cli_actor, start.credential_id, code_now(new, clock))
    service.activate(cli_actor, "bob", start.credential_id)

    assert credentials(ctx, "bob") == [(start.credential_id, "active")]
    clock.advance(seconds=30)
    assert not service.verify("bob", code_now(old, clock)).accepted
    assert service.verify("bob", code_now(new, clock)).accepted


def test_reset_makes_the_user_pending_and_kills_the_old_factor(
    ctx: Context, clock: FixedClock, cli_actor: Actor, users: UserService
) -> None:
    service = MfaService(ctx)
    secret = enroll(ctx, clock, cli_actor, "bob")
    service.generate_backup_codes(cli_actor, "bob")

    service.reset(cli_actor, "bob")

    bob = users.get("bob")
    assert (bob.mfa_type, bob.mfa_status) == ("totp", "pending")
    assert credentials(ctx, "bob") == []
    assert backup_code_rows(ctx, "bob") == 0
    clock.advance(seconds=30)
    assert not service.verify("bob", code_now(secret, clock)).accepted
    assert len(events(ctx, "mfa.reset")) == 1


def test_type_none_removes_credentials_and_backup_codes(
    ctx: Context, clock: FixedClock, cli_actor: Actor, users: UserService
) -> None:
    service = MfaService(ctx)
    enroll(ctx, clock, cli_actor, "bob")
    service.generate_backup_codes(cli_actor, "bob")
    service.begin_enrollment(cli_actor, "bob", "totp")  # a pending one too
    assert len(credentials(ctx, "bob")) == 2 and backup_code_rows(ctx, "bob") == 10

    service.set_type(cli_actor, "bob", "none", configure_later=False)

    bob = users.get("bob")
    assert (bob.mfa_type, bob.mfa_status) == ("none", "none")
    assert credentials(ctx, "bob") == []
    assert backup_code_rows(ctx, "bob") == 0
    assert service.verify("bob", "anything").reason == "not_required"


def test_backup_codes(
    ctx: Context, clock: FixedClock, cli_actor: Actor, users: UserService
) -> None:
    service = MfaService(ctx)
    with pytest.raises(InputError):  # nothing to back up yet
        service.generate_backup_codes(cli_actor, "bob")
    enroll(ctx, clock, cli_actor, "bob")

    codes = service.generate_backup_codes(cli_actor, "bob")

    assert len(codes) == 10 and len(set(codes)) == 10
    for code in codes:
        raw = code.replace("-", "")
        assert len(raw) == 12
        assert set(raw) <= set(backup_codes.ALPHABET)
    assert not set(backup_codes.ALPHABET) & set("01OIL")
    assert service.backup_codes_left("bob") == 10

    first = service.verify("bob", codes[0])
    assert (first.accepted, first.method, first.backup_codes_left) == (True, "backup_code", 9)
    assert not service.verify("bob", codes[0]).accepted  # single use
    # Typed in lower case without dashes: still the same code.
    assert service.verify("bob", codes[1].replace("-", "").lower()).accepted
    assert service.backup_codes_left("bob") == 8

    renewed = service.generate_backup_codes(cli_actor, "bob")

    assert not set(renewed) & set(codes)
    assert service.backup_codes_left("bob") == 10
    assert not service.verify("bob", codes[2]).accepted
    assert service.verify("bob", renewed[0]).accepted
    # Only hashes are stored.
    with ctx.db.read() as session:
        stored = session.exec(select(BackupCode.code_hash)).all()
    assert not {c.replace("-", "") for c in renewed} & set(stored)

    SettingsStore(ctx).set_many(cli_actor, {"backup_codes.count": "6"})
    assert len(service.generate_backup_codes(cli_actor, "bob")) == 6
    assert service.backup_codes_left("bob") == 6


def _staff(ctx: Context, users: UserService, cli_actor: Actor) -> tuple[Actor, Actor]:
    root = users.create(cli_actor, "root", role=Role.ADMIN)
    agent = users.create(cli_actor, "agent", role=Role.HELPDESK)
    return (
        Actor(name="root", role=Role.ADMIN, user_id=root.id),
        Actor(name="agent", role=Role.HELPDESK, user_id=agent.id),
    )


def test_helpdesk_cannot_manage_an_administrators_mfa(
    ctx: Context, clock: FixedClock, cli_actor: Actor, users: UserService
) -> None:
    _admin, helpdesk = _staff(ctx, users, cli_actor)
    service = MfaService(ctx)
    enroll(ctx, clock, cli_actor, "root")

    refusals = [
        lambda: service.set_type(helpdesk, "root", "totp", configure_later=True),
        lambda: service.reset(helpdesk, "root"),
        lambda: service.unlock(helpdesk, "root"),
        lambda: service.begin_enrollment(helpdesk, "root", "totp"),
        lambda: service.generate_backup_codes(helpdesk, "root"),
    ]
    for attempt in refusals:
        with pytest.raises(PermissionDenied):
            attempt()

    assert users.get("root").mfa_status == "configured"
    denied = events(ctx, "denied")
    assert len(denied) == len(refusals)
    assert {(e.actor, e.target) for e in denied} == {("agent", "root")}
    # The same agent may manage a plain user.
    service.set_type(helpdesk, "bob", "totp", configure_later=True)
    assert users.get("bob").mfa_status == "pending"
    with ctx.db.read() as session:
        assert ctx.audit.verify(session).ok


def test_nobody_manages_their_own_mfa_from_administration(
    ctx: Context, cli_actor: Actor, users: UserService
) -> None:
    admin, helpdesk = _staff(ctx, users, cli_actor)
    service = MfaService(ctx)

    with pytest.raises(PermissionDenied, match="Preferences"):
        service.set_type(admin, "root", "totp", configure_later=True)
    with pytest.raises(PermissionDenied):
        service.set_type(helpdesk, "agent", "totp", configure_later=True)
    with pytest.raises(PermissionDenied, match="Preferences"):
        service.reset(admin, "root")

    assert users.get("root").mfa_status == users.get("agent").mfa_status == "none"
    assert [(e.actor, e.target) for e in reversed(events(ctx, "denied"))] == [
        ("root", "root"),
        ("agent", "agent"),
        ("root", "root"),
    ]
    # An administrator may manage someone else's.
    service.set_type(admin, "agent", "totp", configure_later=True)
    assert users.get("agent").mfa_status == "pending"


def test_a_user_may_enroll_themselves(
    ctx: Context, clock: FixedClock, cli_actor: Actor, users: UserService
) -> None:
    """Self-enrollment (first login, Preferences) is not "managing" MFA: a plain user may do it."""
    bob = Actor(name="bob", role=Role.USER, user_id=users.get("bob").id)
    MfaService(ctx).set_type(cli_actor, "bob", "totp", configure_later=True)

    secret = enroll(ctx, clock, bob, "bob")

    assert users.get("bob").mfa_status == "configured"
    clock.advance(seconds=30)
    assert MfaService(ctx).verify("bob", code_now(secret, clock)).accepted
    with pytest.raises(PermissionDenied):
        MfaService(ctx).set_type(bob, "bob", "none", configure_later=False)


def test_usage_skipped_needs_no_second_factor(
    ctx: Context, clock: FixedClock, cli_actor: Actor, users: UserService
) -> None:
    enroll(ctx, clock, cli_actor, "bob")
    SettingsStore(ctx).set_many(cli_actor, {"mfa.usage": "skipped"})

    outcome = MfaService(ctx).verify("bob", "not a code")

    assert (outcome.accepted, outcome.reason) == (True, "not_required")
    assert [(v.mfa_type, v.mfa_status) for v in users.list()] == [("none", "none")]
    assert events(ctx, "verify.refused") == []


def test_usage_required_gives_type_none_users_the_default_type_pending(
    ctx: Context, clock: FixedClock, cli_actor: Actor, users: UserService
) -> None:
    users.create(cli_actor, "carol")
    enroll(ctx, clock, cli_actor, "carol")
    assert MfaService(ctx).verify("bob", "123456").reason == "not_required"

    SettingsStore(ctx).set_many(cli_actor, {"mfa.usage": "required"})

    listed = {v.username: (v.mfa_type, v.mfa_status, v.stored_mfa_type) for v in users.list()}
    assert listed == {
        "bob": ("totp", "pending", "none"),
        "carol": ("totp", "configured", "totp"),
    }
    outcome = MfaService(ctx).verify("bob", "123456")
    assert not outcome.accepted and outcome.reason != "not_required"


def test_a_check_that_fails_midway_gives_its_reserved_attempt_back(
    ctx: Context, clock: FixedClock, cli_actor: Actor, users: UserService, monkeypatch
) -> None:
    """E.g. a verify service still holding a rotated-away key: every login would otherwise leave
    one attempt counted, and the account would end up locked with nobody having guessed."""
    from mfa_tui.core.errors import StorageError
    from mfa_tui.core.factors.totp import TotpFactor
    from mfa_tui.core.models import Lockout

    secret = enroll(ctx, clock, cli_actor, "bob")
    clock.advance(seconds=30)

    def broken(*_args: object) -> None:
        raise StorageError("A secret was encrypted with a key that is not loaded.")

    monkeypatch.setattr(TotpFactor, "verify", broken)
    for _ in range(SettingsStore(ctx).load().lockout_attempts + 1):
        with pytest.raises(StorageError):
            MfaService(ctx).verify("bob", code_now(secret, clock))
    with ctx.db.read() as session:
        row = session.get(Lockout, users.get("bob").id)
        assert row is not None and (row.failed_attempts, row.locked_at) == (0, None)
    monkeypatch.undo()
    assert MfaService(ctx).verify("bob", code_now(secret, clock)).accepted
