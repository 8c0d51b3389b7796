"""Per-user MFA: type, configure later or now, enrollment, reset, unlock, and the second-factor check.

The states a user can be in are kept consistent by construction: a user's type and status change
in the same transaction as their credentials, a new secret is *verifying* (never valid for login)
until proven, and the previous working factor stays active until the new one replaces it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import delete, text, update
from sqlmodel import Session, col, select

from mfa_tui.core import backup_codes, lockout, validation
from mfa_tui.core.access import Action, Actor
from mfa_tui.core.audit import AuditEntry
from mfa_tui.core.context import Context
from mfa_tui.core.delivery import codes, email_ready, masked_address
from mfa_tui.core.errors import ConflictError, InputError, NotFound, PermissionDenied, Refused
from mfa_tui.core.factors import (
    ChallengeRequired,
    EnrollmentStart,
    FactorEnv,
    ProviderUnavailable,
    factor_for,
)
from mfa_tui.core.models import (
    BackupCode,
    CredentialState,
    Lockout,
    MfaCredential,
    MfaStatus,
    MfaType,
    User,
)
from mfa_tui.core.services.guard import authorize, refusals_audited
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import active_credential, effective_mfa, require_user
from mfa_tui.core.settings import Settings

# The "Email code" alternate login: its codes are for logging in only, never for enrollment.
EMAIL_CODE_PURPOSE = "alternate-login"
# What ``verify`` accepts at a login: the user's factor, a backup code, an "Email code".
LOGIN_METHODS = frozenset({"factor", "backup_code", "email_code"})
# What proves the working factor (step-up, or before enrolling a new one): never an emailed code,
# which proves only the mailbox.
FACTOR_METHODS = frozenset({"factor", "backup_code"})


@dataclass(frozen=True)
class SentCode:
    """A code sent by email or SMS outside the user's factor (see ``codes``), accepted by ``verify``
    in its place and reported as ``method``."""

    channel: str
    purpose: str
    binding: str
    method: str


@dataclass(frozen=True)
class VerifyOutcome:
    accepted: bool
    # accepted | not_required | wrong_code | locked | unknown_user | not_enrolled
    reason: str
    method: str | None = None  # the factor type, "backup_code" or "email_code"
    backup_codes_left: int | None = None
    detail: str | None = None  # why a provider failed ("unavailable"), or the "challenge" prompt
    locked_now: bool = False  # this wrong code used up the last attempt: say so at once
    state: str | None = None  # "challenge": hand it back to verify with the next code

    @property
    def message(self) -> str:
        if self.reason in ("unavailable", "challenge") and self.detail:
            return self.detail
        return {
            "accepted": "Code accepted.",
            "not_required": "No second factor is required for this user under the current policy.",
            "locked": "Too many wrong codes: the account is locked; wait, or ask the helpdesk to unlock it.",
            "not_enrolled": "This user has not finished setting up a second factor yet.",
        }.get("locked" if self.locked_now else self.reason, "The code was not accepted.")


class MfaService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.settings = SettingsStore(ctx)

    # Staff choices --------------------------------------------------------------------------------

    def set_type(
        self, actor: Actor, username: str, mfa_type: str, *, configure_later: bool
    ) -> None:
        """Type None removes MFA; any other type with configure later makes the user enroll at next login.

        Configuring now goes through ``begin_enrollment`` / ``confirm_code`` / ``activate`` instead.
        """
        now = self.ctx.clock.now()
        settings = self.settings.load()
        name = validation.supported_mfa_type(mfa_type, settings.supported_types)
        if name != MfaType.NONE and not configure_later:
            raise InputError(
                "Configuring now needs the user's code: use the configure-now steps, or choose Configure later by user."
            )
        with refusals_audited(self.ctx, actor), self.ctx.db.write() as session:
            user = require_user(session, username)
            authorize(actor, Action.MANAGE_MFA, user)
            self.apply_type(session, actor, user, name, now)

    def apply_type(
        self, session: Session, actor: Actor, user: User, name: str, now: datetime
    ) -> None:
        """Inside the caller's transaction: type None, or a type the user configures at next login."""
        before = (user.mfa_type, user.mfa_status)
        if name == MfaType.NONE:
            _delete_credentials(
                session, user, states=(CredentialState.VERIFYING, CredentialState.ACTIVE)
            )
            session.execute(delete(BackupCode).where(col(BackupCode.user_id) == user.id))
            _set_user_mfa(session, user, MfaType.NONE, MfaStatus.NONE, now)
        else:
            # The working factor, if any, stays until the new one is verified at enrollment.
            _delete_credentials(session, user, states=(CredentialState.VERIFYING,))
            _set_user_mfa(session, user, name, MfaStatus.PENDING, now)
        self._audit(
            session,
            actor,
            "mfa.set_type",
            user,
            {"before": before, "after": (name, user.mfa_status)},
        )

    def reset(self, actor: Actor, username: str, *, override_reason: str | None = None) -> None:
        """A lost device: type kept, every credential and backup code removed, status pending.

        Staff need a caller they verified recently; an administrator may override with a reason."""
        from mfa_tui.core.services.caller_check import require_verified_caller

        now = self.ctx.clock.now()
        with refusals_audited(self.ctx, actor), self.ctx.db.write() as session:
            user = require_user(session, username)
            authorize(actor, Action.MANAGE_MFA, user)
            caller = require_verified_caller(session, actor, user, now, override_reason)
            self.apply_reset(session, actor, user, now, caller)

    def apply_reset(
        self,
        session: Session,
        actor: Actor,
        user: User,
        now: datetime,
        caller: dict[str, object] | None = None,
    ) -> None:
        """Inside the caller's transaction (an approved reset request uses it too); ``caller``
        says how the caller was verified, for the audit log."""
        mfa_type = user.mfa_type
        if mfa_type == MfaType.NONE:
            mfa_type, _ = effective_mfa(user.mfa_type, user.mfa_status, self.settings.load(session))
            if mfa_type == MfaType.NONE:
                raise InputError(f"'{user.username}' has no MFA to reset; set a type instead.")
        _delete_credentials(
            session, user, states=(CredentialState.VERIFYING, CredentialState.ACTIVE)
        )
        session.execute(delete(BackupCode).where(col(BackupCode.user_id) == user.id))
        lockout.record_success(session, user.id)  # type: ignore[arg-type]
        before = (user.mfa_type, user.mfa_status)
        _set_user_mfa(session, user, mfa_type, MfaStatus.PENDING, now)
        self._audit(
            session,
            actor,
            "mfa.reset",
            user,
            {"before": before, "after": (mfa_type, MfaStatus.PENDING), **(caller or {})},
        )

    def unlock(self, actor: Actor, username: str) -> bool:
        with refusals_audited(self.ctx, actor), self.ctx.db.write() as session:
            user = require_user(session, username)
            authorize(actor, Action.MANAGE_MFA, user)
            changed = lockout.unlock(session, user.id)  # type: ignore[arg-type]
            if changed:
                self._audit(session, actor, "user.unlock", user, {})
            return changed

    # Enrollment -----------------------------------------------------------------------------------

    def begin_enrollment(self, actor: Actor, username: str, mfa_type: str) -> EnrollmentStart:
        """A new *verifying* credential for the user (replacing any earlier unfinished one); a
        factor that sends something (an email, an SMS) sends it once the credential is saved."""
        settings = self.settings.load()
        name = validation.supported_mfa_type(mfa_type, settings.supported_types)
        if name == MfaType.NONE:
            raise InputError("Choose an MFA type to configure.")
        factor = factor_for(name)
        env = self._env(settings)
        with refusals_audited(self.ctx, actor), self.ctx.db.write() as session:
            self.ctx.require_current_key(session)
            user = require_user(session, username)
            self._authorize_enrollment(actor, user, session)
            # One enrollment begins at a time per user: two at once on PostgreSQL would both delete
            # nothing, then both insert a verifying credential (a unique-index violation). Not a row
            # lock on the user: activation locks the credential, then the user (a deadlock).
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(7, :id)"), {"id": user.id})
            _delete_credentials(session, user, states=(CredentialState.VERIFYING,))
            credential, start = factor.new_credential(
                env, credential_id=secrets.token_hex(16), user=user
            )
            session.add(credential)
            self._audit(session, actor, "mfa.enrollment.begin", user, {"type": name})
        try:
            sent = factor.challenge(env, credential, user)
        except ProviderUnavailable:
            # Nothing half-done: an enrollment whose code could not be sent is removed.
            self.cancel_enrollment(actor, credential.id)
            raise
        return replace(start, instructions=f"{start.instructions} {sent}") if sent else start

    def enrollment_view(self, actor: Actor, credential_id: str) -> EnrollmentStart:
        """The QR code and secret of an enrollment still in progress, shown again."""
        with refusals_audited(self.ctx, actor), self.ctx.db.read() as session:
            credential, user = self._verifying(session, credential_id)
            self._authorize_enrollment(actor, user)
            env = self._env(self.settings.load(session))
        return factor_for(credential.type).enrollment_view(env, credential, user)

    def confirm_code(self, actor: Actor, credential_id: str, code: str) -> bool:
        """Check a code against a verifying credential; a counter it proves is used up."""
        with refusals_audited(self.ctx, actor), self.ctx.db.read() as session:
            credential, user = self._verifying(session, credential_id)
            self._authorize_enrollment(actor, user)
            env = self._env(self.settings.load(session))
        proof = factor_for(credential.type).verify(env, credential, user, code)
        if proof is None:
            return False
        with self.ctx.db.write() as session:
            self.ctx.require_current_key(session)
            values: dict[str, object] = {"verified_at": env.now}
            condition = col(MfaCredential.state) == CredentialState.VERIFYING
            if proof.counter is not None:
                values["last_used_step"] = proof.counter
                condition = condition & _before(proof.counter)
            if proof.device_data is not None:
                values["device_data"] = proof.device_data
            if proof.sealed_secret is not None:
                values["secret"] = proof.sealed_secret
            accepted = session.execute(
                update(MfaCredential)
                .where(col(MfaCredential.id) == credential_id, condition)
                .values(**values)
            ).rowcount  # type: ignore[attr-defined]
            if accepted:
                self._audit(
                    session, actor, "mfa.enrollment.code_verified", user, {"type": credential.type}
                )
            return bool(accepted)

    def send_challenge(self, username: str) -> str | None:
        """At login, before the code: send an email/SMS code or a push for the active factor."""
        with self.ctx.db.read() as session:
            user = _find(session, username)
            credential = _active_credential(session, user) if user is not None else None
            env = self._env(self.settings.load(session))
        if user is None or credential is None:
            return None
        return factor_for(credential.type).challenge(env, credential, user)

    def send_email_code(self, username: str) -> str:
        """The "Email code" alternate way to log in: a one-time code to the user's own address.

        It stands in for the second factor at this login only (never for enrollment); its
        attempts count toward the same lockout as every other code."""
        now = self.ctx.clock.now()
        with self.ctx.db.read() as session:
            settings = self.settings.load(session)
            user = _find(session, username)
            locked = user is not None and lockout.state_of(session.get(Lockout, user.id)).is_locked(
                settings, now
            )
        offered = user is not None and email_code_offered(
            settings, user.email, effective_mfa(user.mfa_type, user.mfa_status, settings)[0]
        )
        if user is None or not user.enabled or not offered:
            raise InputError(
                "Email codes are not available for this account: use your second factor."
            )
        if locked:
            raise Refused("Too many wrong codes: the account is locked; wait, or ask the helpdesk.")
        assert user.id is not None and user.email is not None
        env = self._env(settings, now)
        address = user.email
        issued = codes.send_code(
            env,
            user_id=user.id,
            channel="email",
            purpose=EMAIL_CODE_PURPOSE,
            binding=_email_code_binding(user),
            deliver=lambda code: factor_for(MfaType.EMAIL).deliver(env, address, code),  # type: ignore[attr-defined]
        )
        if issued.sent:
            self._audit_login(user, user.username, "verify.email_code_sent", {}, now)
        return codes.sent_message(issued, masked_address(address))

    def activate(
        self, actor: Actor, username: str, credential_id: str, expected_version: int | None = None
    ) -> None:
        """Make a proven secret the user's working factor, replacing the previous one, atomically."""
        now = self.ctx.clock.now()
        with refusals_audited(self.ctx, actor), self.ctx.db.write() as session:
            user = require_user(session, username)
            self._authorize_enrollment(actor, user)
            if expected_version is not None and user.version != expected_version:
                raise ConflictError(
                    f"Someone else saved '{user.username}' while you were editing; reload the form."
                )
            self.apply_activation(session, actor, user, credential_id, now)

    def apply_activation(
        self, session: Session, actor: Actor, user: User, credential_id: str, now: datetime
    ) -> None:
        """Inside the caller's transaction: the proven secret replaces the user's working factor."""
        credential = session.get(MfaCredential, credential_id)
        if (
            credential is None
            or credential.user_id != user.id
            or credential.state != CredentialState.VERIFYING
        ):
            raise InputError("That enrollment was cancelled or replaced; start again.")
        if credential.verified_at is None:
            raise InputError("Enter and validate a code from the authenticator app before saving.")
        before = (user.mfa_type, user.mfa_status)
        _delete_credentials(session, user, states=(CredentialState.ACTIVE,))
        session.execute(
            update(MfaCredential)
            .where(col(MfaCredential.id) == credential_id)
            .values(state=CredentialState.ACTIVE)
        )
        _set_user_mfa(session, user, credential.type, MfaStatus.CONFIGURED, now)
        # Imported here: the invitations module brings SMTP, which verify never needs.
        from mfa_tui.core.services.access_pass import revoke_invitations

        revoke_invitations(session, user.id, now)  # type: ignore[arg-type]
        self._audit(
            session,
            actor,
            "mfa.configured",
            user,
            {"before": before, "after": (credential.type, MfaStatus.CONFIGURED)},
        )

    def cancel_enrollment(self, actor: Actor, credential_id: str) -> None:
        with self.ctx.db.write() as session:
            credential = session.get(MfaCredential, credential_id)
            if credential is None or credential.state != CredentialState.VERIFYING:
                return
            user = session.get(User, credential.user_id)
            assert user is not None
            session.delete(credential)
            self._audit(session, actor, "mfa.enrollment.cancel", user, {"type": credential.type})

    # Backup codes ---------------------------------------------------------------------------------

    def generate_backup_codes(self, actor: Actor, username: str) -> list[str]:
        """A new set (the old set stops working); the codes are returned once and stored as hashes."""
        now = self.ctx.clock.now()
        settings = self.settings.load()
        codes = backup_codes.new_codes(settings.backup_code_count)
        with refusals_audited(self.ctx, actor), self.ctx.db.write() as session:
            user = require_user(session, username)
            self._authorize_enrollment(actor, user, session)
            if user.mfa_status != MfaStatus.CONFIGURED:
                raise InputError(
                    f"'{user.username}' needs a configured second factor before backup codes."
                )
            session.execute(delete(BackupCode).where(col(BackupCode.user_id) == user.id))
            session.execute(
                BackupCode.__table__.insert(),  # type: ignore[attr-defined]
                [
                    {
                        "user_id": user.id,
                        "code_hash": self._code_hash(backup_codes.normalize(code) or ""),
                        "created_at": now,
                    }
                    for code in codes
                ],
            )
            self._audit(session, actor, "mfa.backup_codes.generate", user, {"count": len(codes)})
        return codes

    def backup_codes_left(self, username: str) -> int:
        with self.ctx.db.read() as session:
            user = require_user(session, username)
            return _unused_backup_codes(session, user.id)  # type: ignore[arg-type]

    # The second factor at login ------------------------------------------------------------------

    def verify(
        self,
        username: str,
        code: str,
        *,
        actor_name: str | None = None,
        state: str | None = None,
        methods: frozenset[str] = LOGIN_METHODS,
        sent_code: SentCode | None = None,
        exact_username: bool = False,
    ) -> VerifyOutcome:
        """Check a second factor (the user's active factor or a backup code) with lockout and replay refusal.

        ``state`` is the one a "challenge" outcome carried, handed back with the next code.
        ``methods`` narrows what counts (a helpdesk check of a backup code only); ``sent_code``
        is a code sent outside the factor (a caller who lost it), checked even for a user whose
        policy needs no second factor. ``exact_username``: the name is an OS account's (PAM),
        which must match the user's name exactly — 'Alice' and 'alice' are two accounts there."""
        now = self.ctx.clock.now()
        with self.ctx.db.read() as session:
            settings = self.settings.load(session)
            user = _find(session, username)
            if user is not None and exact_username and user.username != username:
                user = None
            if user is None or not user.enabled:
                # A disabled account gets the unknown user's answer, never "no factor needed".
                return VerifyOutcome(False, "unknown_user")
            mfa_type, _status = effective_mfa(user.mfa_type, user.mfa_status, settings)
            if mfa_type == MfaType.NONE and sent_code is None:
                return VerifyOutcome(True, "not_required")
            credential = _active_credential(session, user) if "factor" in methods else None
        has_backup_codes = settings.backup_codes_enabled and "backup_code" in methods
        if (
            sent_code is None
            and "email_code" in methods
            and email_code_offered(settings, user.email, mfa_type)
        ):
            sent_code = SentCode(
                "email", EMAIL_CODE_PURPOSE, _email_code_binding(user), "email_code"
            )
        if credential is None and not has_backup_codes and sent_code is None:
            return VerifyOutcome(False, "not_enrolled")
        actor = actor_name or user.username
        assert user.id is not None
        if not lockout.reserve_attempt(self.ctx.db, user.id, settings, now):
            self._audit_login(user, actor, "verify.refused", {"reason": "locked"}, now)
            return VerifyOutcome(False, "locked")

        try:
            method: str | None = None
            proof = None
            if credential is not None:
                try:
                    # Outside any write transaction: a factor may ask a remote service.
                    proof = factor_for(credential.type).verify(
                        replace(self._env(settings, now), challenge_state=state),
                        credential,
                        user,
                        code,
                    )
                except ChallengeRequired as challenge:
                    # Right so far (a RADIUS Access-Challenge): not a failure, the next code decides.
                    lockout.release_attempt(self.ctx.db, user.id)
                    self._audit_login(
                        user, actor, "verify.challenge", {"method": credential.type}, now
                    )
                    return VerifyOutcome(
                        False,
                        "challenge",
                        credential.type,
                        detail=challenge.prompt,
                        state=challenge.state,
                    )
                except ProviderUnavailable as failure:
                    lockout.release_attempt(self.ctx.db, user.id)
                    self._audit_login(
                        user, actor, "verify.unavailable", {"reason": str(failure)}, now
                    )
                    return VerifyOutcome(False, "unavailable", detail=str(failure))
            # Its own transaction (it reserves the code's attempt first), before the one below.
            sent_code_accepted = (
                proof is None
                and sent_code is not None
                and codes.well_formed(code)
                and codes.check_code(
                    self._env(settings, now),
                    user_id=user.id,
                    channel=sent_code.channel,
                    purpose=sent_code.purpose,
                    binding=sent_code.binding,
                    code=code,
                )
            )
            with self.ctx.db.write() as session:
                if credential is not None and proof is not None:
                    fresh = proof.counter is None or _consume_counter(
                        session, credential.id, proof.counter
                    )
                    method = credential.type if fresh else None
                if method is None and sent_code_accepted:
                    assert sent_code is not None
                    method = sent_code.method
                normalized = (
                    backup_codes.normalize(code) if method is None and has_backup_codes else None
                )
                if normalized is not None and _consume_backup_code(
                    session, user.id, self._code_hash(normalized), now
                ):
                    method = "backup_code"
                if method is not None:
                    lockout.record_success(session, user.id)
                    # Counted only when one was used up: the person is told how many remain.
                    left = (
                        _unused_backup_codes(session, user.id) if method == "backup_code" else None
                    )
                    self.ctx.audit.append(
                        session,
                        AuditEntry(actor, "verify.accepted", user.username, {"method": method}),
                        now,
                    )
                    return VerifyOutcome(True, "accepted", method, left)
                locked_now = lockout.record_failure(session, user.id, settings, now)
                self.ctx.audit.append(
                    session,
                    AuditEntry(
                        actor,
                        "verify.refused",
                        user.username,
                        {"reason": "wrong_code", "locked": locked_now},
                    ),
                    now,
                )
                return VerifyOutcome(False, "wrong_code", locked_now=locked_now)
        except BaseException:
            # The reserved attempt was neither used nor given back (the key was rotated under a
            # running process, the database went away): give it back, or it stays counted.
            lockout.release_attempt(self.ctx.db, user.id)
            raise

    # Helpers --------------------------------------------------------------------------------------

    def _env(self, settings: Settings, now: datetime | None = None) -> FactorEnv:
        return FactorEnv(self.ctx, settings, now or self.ctx.clock.now())

    def _code_hash(self, normalized_code: str) -> str:
        return self.ctx.box.keyed_hash(backup_codes.HASH_PURPOSE, normalized_code)

    def _authorize_enrollment(
        self, actor: Actor, user: User, session: Session | None = None
    ) -> None:
        """Staff configure others' MFA; users enroll themselves — with step-up when a factor works."""
        if not actor.acts_on_self(user.id):
            authorize(actor, Action.MANAGE_MFA, user)
            return
        needs_proof = session is not None and _active_credential(session, user) is not None
        if needs_proof and not actor.has_recent_proof(self.ctx.clock.now()):
            raise StepUpRequired(
                "Prove your current second factor first (enter a code from it), then try again."
            )

    def _verifying(self, session: Session, credential_id: str) -> tuple[MfaCredential, User]:
        credential = session.get(MfaCredential, credential_id)
        if credential is None or credential.state != CredentialState.VERIFYING:
            raise NotFound("That enrollment was cancelled or replaced; start again.")
        user = session.get(User, credential.user_id)
        assert user is not None
        return credential, user

    def _audit(
        self, session: Session, actor: Actor, action: str, user: User, details: dict[str, object]
    ) -> None:
        self.ctx.audit.append(
            session, AuditEntry(actor.name, action, user.username, details), self.ctx.clock.now()
        )

    def _audit_login(
        self, user: User, actor: str, action: str, details: dict[str, object], now: datetime
    ) -> None:
        with self.ctx.db.write() as session:
            self.ctx.audit.append(session, AuditEntry(actor, action, user.username, details), now)


def email_code_offered(settings: Settings, email: str | None, mfa_type: str) -> bool:
    """Offer "Email code" at login: on in Server Settings, SMTP set up, the user has an address and
    needs a second factor (``mfa_type`` as it takes effect), and email is not already that factor."""
    return bool(
        settings["alternate.email"]
        and email_ready(settings)
        and email
        and mfa_type not in (MfaType.NONE, MfaType.EMAIL)
    )


def _email_code_binding(user: User) -> str:
    return f"alternate-login:{user.id}"


class StepUpRequired(PermissionDenied):
    """Changing one's own factor needs a fresh proof of the current one."""


def _active_credential(session: Session, user: User) -> MfaCredential | None:
    assert user.id is not None
    return active_credential(session, user.id)


def _find(session: Session, username: str) -> User | None:
    return session.exec(
        select(User).where(User.username_key == username.strip().casefold())
    ).one_or_none()


def _set_user_mfa(session: Session, user: User, mfa_type: str, status: str, now: datetime) -> None:
    session.execute(
        update(User)
        .where(col(User.id) == user.id)
        .values(
            mfa_type=mfa_type,
            mfa_status=status,
            mfa_status_since=now,
            version=User.version + 1,
            updated_at=now,
        )
    )
    session.expire(user)


def _delete_credentials(session: Session, user: User, *, states: tuple[str, ...]) -> None:
    session.execute(
        delete(MfaCredential).where(
            col(MfaCredential.user_id) == user.id, col(MfaCredential.state).in_(states)
        )
    )


def _before(counter: int) -> Any:
    """The credential's last accepted counter is below ``counter`` (or none was accepted yet)."""
    return col(MfaCredential.last_used_step).is_(None) | (
        col(MfaCredential.last_used_step) < counter
    )


def _consume_counter(session: Session, credential_id: str, counter: int) -> bool:
    """Accept a time-step at most once, even from two processes at the same moment."""
    return (
        session.execute(
            update(MfaCredential)
            .where(
                col(MfaCredential.id) == credential_id,
                col(MfaCredential.state) == CredentialState.ACTIVE,
                _before(counter),
            )
            .values(last_used_step=counter)
        ).rowcount  # type: ignore[attr-defined]
        == 1
    )


def _consume_backup_code(session: Session, user_id: int, code_hash: str, now: datetime) -> bool:
    return (
        session.execute(
            update(BackupCode)
            .where(
                col(BackupCode.user_id) == user_id,
                col(BackupCode.code_hash) == code_hash,
                col(BackupCode.used_at).is_(None),
            )
            .values(used_at=now)
        ).rowcount  # type: ignore[attr-defined]
        == 1
    )


def _unused_backup_codes(session: Session, user_id: int) -> int:
    from sqlalchemy import func

    return session.exec(
        select(func.count())
        .select_from(BackupCode)
        .where(BackupCode.user_id == user_id, col(BackupCode.used_at).is_(None))
    ).one()
