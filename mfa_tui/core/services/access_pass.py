"""Temporary access passes and enrollment invitations: one-time codes that lead into enrollment.

A **temporary access pass** (TAP) is for a user who lost their factor: staff make one after
verifying the caller; at login, after the password, it stands in for the second factor *only* to
enroll a new one (``MfaService.verify`` never looks at it, so it is no second factor for
``verify``, PAM or step-up). Lifetime and single use come from ``tap.lifetime_minutes`` and
``tap.single_use``.

An **enrollment invitation** lets a user who has no working factor yet set their password and
enroll on their own screen, so the agent never sees the secret; it is emailed when Email is set
up and the user has an address, otherwise shown once to the agent.

Both are stored only as keyed hashes, revocable, and consumed by one conditional UPDATE (a
single-use code is accepted at most once, even by two processes at once); every guess takes an
attempt from the user's second-factor lockout budget first.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from mfa_tui.core import lockout, passwords
from mfa_tui.core.access import Action, Actor
from mfa_tui.core.audit import AuditEntry
from mfa_tui.core.backup_codes import ALPHABET, format_code
from mfa_tui.core.context import Context
from mfa_tui.core.delivery import email_ready, masked_address
from mfa_tui.core.delivery.email import send_email
from mfa_tui.core.errors import InputError, MfaTuiError, Refused
from mfa_tui.core.models import (
    AccessPass,
    Lockout,
    MfaStatus,
    MfaType,
    User,
)
from mfa_tui.core.services.caller_check import require_verified_caller
from mfa_tui.core.services.guard import authorize, refusals_audited
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import (
    UserView,
    active_credential,
    effective_mfa,
    find_user,
    require_user,
    to_view,
)
from mfa_tui.core.settings import Settings

TAP = "tap"
INVITATION = "invitation"
INVITATION_LIFETIME = timedelta(days=7)
HASH_PURPOSE = "access-pass"
CODE_LENGTH = 16
WRONG = "The username or code is not right, or the code has expired."


@dataclass(frozen=True)
class IssuedPass:
    """``code`` is shown once (None when the invitation went by email to ``sent_to``)."""

    code: str | None
    expires_at: datetime
    single_use: bool = True
    sent_to: str | None = None


@dataclass(frozen=True)
class PassView:
    created_by: str
    created_at: datetime
    expires_at: datetime
    single_use: bool
    used_at: datetime | None

    @property
    def summary(self) -> str:
        use = "single use" if self.single_use else "reusable until it expires"
        return (
            f"Temporary access pass by {self.created_by}, valid until "
            f"{self.expires_at:%Y-%m-%d %H:%M} UTC ({use})."
        )


@dataclass(frozen=True)
class Redeemed:
    """The user, and the MFA type they now enroll."""

    user: UserView
    mfa_type: str


def new_code() -> str:
    return format_code("".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH)))


def normalize(text: str) -> str | None:
    compact = text.strip().upper().replace("-", "").replace(" ", "")
    if len(compact) != CODE_LENGTH or any(char not in ALPHABET for char in compact):
        return None
    return compact


class AccessPasses:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.settings = SettingsStore(ctx)

    # Temporary access pass -------------------------------------------------------------------------

    def create_tap(
        self, actor: Actor, username: str, *, override_reason: str | None = None
    ) -> IssuedPass:
        """A new pass (any earlier live one is revoked), shown once; needs a verified caller."""
        now = self.ctx.clock.now()
        code = new_code()
        with refusals_audited(self.ctx, actor), self.ctx.db.write() as session:
            user = require_user(session, username)
            authorize(actor, Action.MANAGE_MFA, user)
            settings = self.settings.load(session)
            if effective_mfa(user.mfa_type, user.mfa_status, settings)[0] == MfaType.NONE:
                raise InputError(
                    f"'{user.username}' has no MFA type to enroll: set a type instead."
                )
            caller = require_verified_caller(session, actor, user, now, override_reason)
            expires_at = now + timedelta(minutes=settings["tap.lifetime_minutes"])
            single_use = bool(settings["tap.single_use"])
            self._revoke(session, user, TAP, now)
            self._insert(session, actor, user, TAP, code, expires_at, single_use, now)
            self.ctx.audit.append(
                session,
                AuditEntry(
                    actor.name,
                    "tap.create",
                    user.username,
                    {"expires_at": expires_at, "single_use": single_use, **caller},
                ),
                now,
            )
        return IssuedPass(code, expires_at, single_use)

    def revoke_tap(self, actor: Actor, username: str) -> bool:
        now = self.ctx.clock.now()
        with refusals_audited(self.ctx, actor), self.ctx.db.write() as session:
            user = require_user(session, username)
            authorize(actor, Action.MANAGE_MFA, user)
            revoked = self._revoke(session, user, TAP, now)
            if revoked:
                self.ctx.audit.append(
                    session, AuditEntry(actor.name, "tap.revoke", user.username), now
                )
            return revoked

    def active_tap(self, username: str) -> PassView | None:
        now = self.ctx.clock.now()
        with self.ctx.db.read() as session:
            user = require_user(session, username)
            row = session.exec(
                select(AccessPass)
                .where(*_live(user.id, TAP, now))  # type: ignore[arg-type]
                .order_by(col(AccessPass.created_at).desc())
            ).first()
        if row is None:
            return None
        return PassView(row.created_by, row.created_at, row.expires_at, row.single_use, row.used_at)

    def redeem_tap(self, user_id: int, code: str) -> Redeemed:
        """At login, after the password: the pass lets the user enroll a new factor, nothing else."""
        user = self._redeem(user_id, TAP, code)
        settings = self.settings.load()
        mfa_type = effective_mfa(user.mfa_type, user.mfa_status, settings)[0]
        return Redeemed(self._view(user), mfa_type)

    # Enrollment invitation -------------------------------------------------------------------------

    def invite(self, actor: Actor, username: str) -> IssuedPass:
        """Make the user pending (their type, or the default under Required) and give them a code
        to set their password and enroll on their own screen."""
        from mfa_tui.core.services.mfa import MfaService

        now = self.ctx.clock.now()
        code = new_code()
        expires_at = now + INVITATION_LIFETIME
        with refusals_audited(self.ctx, actor), self.ctx.db.write() as session:
            user = require_user(session, username)
            authorize(actor, Action.MANAGE_MFA, user)
            settings = self.settings.load(session)
            mfa_type = effective_mfa(user.mfa_type, user.mfa_status, settings)[0]
            if mfa_type == MfaType.NONE:
                raise InputError(
                    f"Choose an MFA type for '{user.username}' first, then send the invitation."
                )
            if _has_active(session, user):
                raise InputError(
                    f"'{user.username}' already has a working factor: use a temporary access "
                    "pass (after verifying the caller) instead of an invitation."
                )
            if user.mfa_status != MfaStatus.PENDING or user.mfa_type != mfa_type:
                MfaService(self.ctx).apply_type(session, actor, user, mfa_type, now)
            self._revoke(session, user, INVITATION, now)
            invitation_id = self._insert(
                session, actor, user, INVITATION, code, expires_at, True, now
            ).id
            email = user.email if email_ready(settings) else None
            self.ctx.audit.append(
                session,
                AuditEntry(
                    actor.name,
                    "invitation.create",
                    user.username,
                    {"expires_at": expires_at, "by": "email" if email else "agent"},
                ),
                now,
            )
        if email is None:
            return IssuedPass(code, expires_at)
        issuer = settings.totp_issuer
        try:
            send_email(
                settings,
                email,
                f"{issuer}: set up your second factor",
                f"You are invited to set up your second factor for {issuer}.\n\n"
                f"At the login screen choose 'I have an invitation', enter your username "
                f"({user.username}) and this code:\n\n    {code}\n\n"
                f"It works once, until {expires_at:%Y-%m-%d %H:%M} UTC.\n",
            )
        except MfaTuiError as unsent:
            # Nobody has the code: it must not stay live, and the log must not say it was sent.
            # Only this one: another agent may have sent a newer invitation meanwhile.
            revoked_at = self.ctx.clock.now()
            with self.ctx.db.write() as session:
                session.execute(
                    update(AccessPass)
                    .where(
                        col(AccessPass.id) == invitation_id, col(AccessPass.revoked_at).is_(None)
                    )
                    .values(revoked_at=revoked_at)
                )
                self.ctx.audit.append(
                    session,
                    AuditEntry(
                        actor.name, "invitation.revoke", user.username, {"reason": str(unsent)}
                    ),
                    revoked_at,
                )
            raise
        return IssuedPass(None, expires_at, sent_to=masked_address(email))

    def redeem_invitation(self, username: str, code: str, new_password: str) -> Redeemed:
        """Set the password and go into enrollment; a wrong code counts toward the lockout."""
        passwords.check_password_strength(new_password, username)
        # Slow, so outside the write lock — and before the lookup, so that an unknown username
        # takes as long to refuse as a known one (no telling which accounts exist).
        password_hash = passwords.hash_password(new_password)
        with self.ctx.db.read() as session:
            user = find_user(session, username)
        if user is None or not user.enabled:
            raise Refused(WRONG)
        user = self._redeem(user.id, INVITATION, code, password_hash=password_hash)  # type: ignore[arg-type]
        mfa_type = effective_mfa(user.mfa_type, user.mfa_status, self.settings.load())[0]
        return Redeemed(self._view(user), mfa_type)

    # Shared ---------------------------------------------------------------------------------------

    def _redeem(
        self, user_id: int, kind: str, code: str, *, password_hash: str | None = None
    ) -> User:
        now = self.ctx.clock.now()
        settings = self.settings.load()
        with self.ctx.db.read() as session:
            user = session.get(User, user_id)
            has_live_pass = session.exec(
                select(AccessPass.id).where(*_live(user_id, kind, now))
            ).first()
        if user is None or not user.enabled:
            raise Refused(WRONG)
        if has_live_pass is None:
            # Nothing to guess: the attempt must not use up the account's lockout budget, or anyone
            # who knows a username could lock its owner out from the login screen.
            self._audit(user, f"{kind}.refused", {"reason": "none_live"}, now)
            raise Refused(WRONG)
        if not lockout.reserve_attempt(self.ctx.db, user_id, settings, now):
            self._audit(user, f"{kind}.refused", {"reason": "locked"}, now)
            raise Refused("Too many wrong codes: the account is locked; wait, or ask the helpdesk.")
        normalized = normalize(code)
        try:
            return self._consume(user, kind, normalized, password_hash, settings, now)
        except _Superseded:
            lockout.release_attempt(self.ctx.db, user_id)  # the right code: not a failed attempt
            raise Refused(
                "This invitation is no longer valid: the account already has a working "
                "second factor. Log in as usual."
            ) from None

    def _consume(
        self,
        user: User,
        kind: str,
        normalized: str | None,
        password_hash: str | None,
        settings: Settings,
        now: datetime,
    ) -> User:
        user_id = user.id
        assert user_id is not None
        with self.ctx.db.write() as session:
            consumed = normalized is not None and (
                session.execute(
                    update(AccessPass)
                    .where(
                        *_live(user_id, kind, now),
                        col(AccessPass.code_hash) == self._hash(user_id, kind, normalized),
                    )
                    .values(used_at=now)
                ).rowcount  # type: ignore[attr-defined]
                == 1
            )
            if consumed and kind == INVITATION and _has_active(session, user):
                # Set up in the meantime: an invitation must not replace a working factor or
                # its owner's password (it is revoked when a factor is activated; belt and braces).
                # Raising rolls the consumption back with the rest of the transaction.
                raise _Superseded
            if consumed:
                lockout.record_success(session, user_id)
                if password_hash is not None:
                    from mfa_tui.core.services.users import UserService

                    UserService(self.ctx).apply_password_hash(
                        session, _named(user), user, password_hash, now
                    )
                self.ctx.audit.append(
                    session, AuditEntry(user.username, f"{kind}.redeem", user.username), now
                )
                fresh = session.get(User, user_id)
                assert fresh is not None
                return fresh
            locked_now = lockout.record_failure(session, user_id, settings, now)
            self.ctx.audit.append(
                session,
                AuditEntry(
                    user.username,
                    f"{kind}.refused",
                    user.username,
                    {"reason": "wrong_code", "locked": locked_now},
                ),
                now,
            )
        raise Refused(WRONG)

    def _insert(
        self,
        session: Session,
        actor: Actor,
        user: User,
        kind: str,
        code: str,
        expires_at: datetime,
        single_use: bool,
        now: datetime,
    ) -> AccessPass:
        row = AccessPass(
            user_id=user.id,  # type: ignore[arg-type]
            kind=kind,
            code_hash=self._hash(user.id, kind, normalize(code) or ""),  # type: ignore[arg-type]
            created_by=actor.name,
            created_at=now,
            expires_at=expires_at,
            single_use=single_use,
        )
        session.add(row)
        session.flush()  # its id, for a revocation of this one pass only
        return row

    def _revoke(self, session: Session, user: User, kind: str, now: datetime) -> bool:
        return bool(
            session.execute(
                update(AccessPass)
                .where(*_live(user.id, kind, now))  # type: ignore[arg-type]
                .values(revoked_at=now)
            ).rowcount  # type: ignore[attr-defined]
        )

    def _hash(self, user_id: int, kind: str, normalized: str) -> str:
        # Bound to the user and the kind: an invitation never works as a pass, nor for another user.
        return self.ctx.box.keyed_hash(HASH_PURPOSE, f"{kind}:{user_id}:{normalized}")

    def _view(self, user: User) -> UserView:
        with self.ctx.db.read() as session:
            settings = self.settings.load(session)
            state = lockout.state_of(session.get(Lockout, user.id))
        return to_view(user, state, settings, self.ctx.clock.now())

    def _audit(self, user: User, action: str, details: dict[str, object], now: datetime) -> None:
        with self.ctx.db.write() as session:
            self.ctx.audit.append(
                session, AuditEntry(user.username, action, user.username, details), now
            )


def _live(user_id: int, kind: str, now: datetime) -> tuple[object, ...]:
    """Not revoked, not expired; a used single-use pass no longer counts as live."""
    return (
        col(AccessPass.user_id) == user_id,
        col(AccessPass.kind) == kind,
        col(AccessPass.revoked_at).is_(None),
        col(AccessPass.expires_at) > now,
        or_(col(AccessPass.single_use).is_(False), col(AccessPass.used_at).is_(None)),
    )


class _Superseded(Exception):
    """A right invitation code for an account that has a working factor by now."""


def revoke_invitations(session: Session, user_id: int, now: datetime) -> None:
    """Inside the caller's transaction, when an invitation no longer fits the account: a factor
    was activated, or the role or password changed after it was sent."""
    session.execute(
        update(AccessPass).where(*_live(user_id, INVITATION, now)).values(revoked_at=now)
    )


def _has_active(session: Session, user: User) -> bool:
    assert user.id is not None
    return active_credential(session, user.id) is not None


def _named(user: User) -> Actor:
    return Actor(name=user.username, role=user.role, user_id=user.id)
