"""Signing in: the password step (slowed, never locking), then what the user must do next."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col

from mfa_tui.core import lockout, passwords
from mfa_tui.core.access import Actor
from mfa_tui.core.audit import AuditEntry
from mfa_tui.core.context import Context
from mfa_tui.core.errors import NotFound
from mfa_tui.core.models import Lockout, MfaCredential, MfaStatus, MfaType, User
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import (
    UserView,
    active_credential,
    effective_mfa,
    find_user,
    to_view,
)
from mfa_tui.core.settings import Settings

# Wrong passwords are free up to this many in a row, then each waits twice as long as the last.
FREE_PASSWORD_FAILURES = 3
MAX_PASSWORD_DELAY_SECONDS = 300


def password_delay(failures: int) -> int:
    if failures < FREE_PASSWORD_FAILURES:
        return 0
    return min(2 ** (failures - FREE_PASSWORD_FAILURES), MAX_PASSWORD_DELAY_SECONDS)


@dataclass(frozen=True)
class PasswordOutcome:
    # ok | wrong | throttled | disabled
    reason: str
    user: UserView | None = None
    retry_after_seconds: int = 0

    @property
    def message(self) -> str:
        if self.reason == "throttled":
            return f"Too many failed logins: wait {self.retry_after_seconds} s and try again."
        if self.reason == "disabled":
            return "This account is disabled; ask an administrator."
        return "The username or password is not correct."


@dataclass(frozen=True)
class NextStep:
    """``done``, ``second_factor`` (of ``mfa_type``), ``enroll`` (in ``mfa_type``) or ``expired``
    (the pending configuration lapsed: staff must renew it)."""

    kind: str
    mfa_type: str = MfaType.NONE


def pending_expired(user: User, settings: Settings, now: datetime) -> bool:
    """A pending configuration lapses after mfa.pending_expiry_days (0 = never); staff renew it."""
    days = settings["mfa.pending_expiry_days"]
    since = user.mfa_status_since
    return bool(days) and since is not None and now >= since + timedelta(days=days)


class AuthService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def check_password(self, username: str, password: str) -> PasswordOutcome:
        now = self.ctx.clock.now()
        with self.ctx.db.read() as session:
            user = find_user(session, username)
            counters = session.get(Lockout, user.id) if user is not None else None
        if (
            user is not None
            and counters is not None
            and counters.last_password_failure_at is not None
        ):
            wait_until = counters.last_password_failure_at + timedelta(
                seconds=password_delay(counters.password_failures)
            )
            if now < wait_until:
                return PasswordOutcome(
                    "throttled", retry_after_seconds=int((wait_until - now).total_seconds()) + 1
                )
        # Checked even for an unknown user, so both take the time of one argon2 verification.
        if not passwords.verify_password(user.password_hash if user else None, password):
            if user is not None:
                self._record_password_failure(user)
            return PasswordOutcome("wrong")
        assert user is not None and user.password_hash is not None and user.id is not None
        if not user.enabled:
            return PasswordOutcome("disabled")
        with self.ctx.db.write() as session:
            session.execute(
                update(Lockout)
                .where(col(Lockout.user_id) == user.id)
                .values(password_failures=0, last_password_failure_at=None)
            )
            if passwords.needs_rehash(user.password_hash):
                session.execute(
                    update(User)
                    .where(col(User.id) == user.id)
                    .values(password_hash=passwords.hash_password(password))
                )
                self.ctx.audit.append(
                    session, AuditEntry(user.username, "user.password_rehashed", user.username), now
                )
            settings = SettingsStore(self.ctx).load(session)
            lock = lockout.state_of(session.get(Lockout, user.id))
            return PasswordOutcome("ok", to_view(user, lock, settings, now))

    def next_step(self, user_id: int) -> NextStep:
        """What the user must do after the password, before anything else."""
        user, settings, active = self._mfa_state(user_id)
        mfa_type, status = effective_mfa(user.mfa_type, user.mfa_status, settings)
        if mfa_type == MfaType.NONE:
            return NextStep("done")
        if active is not None:
            # A working factor is proven first, even when a new type is pending.
            return NextStep("second_factor", active.type)
        if status == MfaStatus.PENDING:
            if pending_expired(user, settings, self.ctx.clock.now()):
                return NextStep("expired", mfa_type)
            return NextStep("enroll", mfa_type)
        return NextStep("second_factor", mfa_type)

    def after_second_factor(self, user_id: int) -> NextStep:
        """After proving the working factor: enroll a pending new one, or carry on."""
        user, settings, _active_factor = self._mfa_state(user_id)
        mfa_type, status = effective_mfa(user.mfa_type, user.mfa_status, settings)
        expired = pending_expired(user, settings, self.ctx.clock.now())
        if status == MfaStatus.PENDING and not expired:
            return NextStep("enroll", mfa_type)
        return NextStep("done")

    def _mfa_state(self, user_id: int) -> tuple[User, Settings, MfaCredential | None]:
        with self.ctx.db.read() as session:
            user = session.get(User, user_id)
            if user is None:  # deleted by staff between the login's steps
                raise NotFound("This account no longer exists.")
            return user, SettingsStore(self.ctx).load(session), active_credential(session, user_id)

    def record_login(self, actor: Actor, method: str) -> None:
        self._record_session_event(actor, "login.success", {"method": method})

    def record_logout(self, actor: Actor, reason: str) -> None:
        """A session ended: ``reason`` is "logged out", "quit" (Ctrl+Q) or "idle" (timed out)."""
        self._record_session_event(actor, "logout", {"reason": reason})

    def _record_session_event(self, actor: Actor, action: str, details: dict[str, str]) -> None:
        with self.ctx.db.write() as session:
            self.ctx.audit.append(
                session, AuditEntry(actor.name, action, actor.name, details), self.ctx.clock.now()
            )

    def _record_password_failure(self, user: User) -> None:
        now = self.ctx.clock.now()
        with self.ctx.db.write() as session:
            lockout.ensure_row(session, user.id)  # type: ignore[arg-type]
            session.execute(
                update(Lockout)
                .where(col(Lockout.user_id) == user.id)
                .values(
                    password_failures=col(Lockout.password_failures) + 1,
                    last_password_failure_at=now,
                )
            )
            self.ctx.audit.append(
                session, AuditEntry(user.username, "login.password_refused", user.username), now
            )
