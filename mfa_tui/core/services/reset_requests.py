"""Lost device: the user asks at the second-factor prompt; staff approve (reset to pending) or deny."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select

from mfa_tui.core.access import Action, Actor
from mfa_tui.core.audit import AuditEntry
from mfa_tui.core.context import Context
from mfa_tui.core.errors import ConflictError, InputError, NotFound
from mfa_tui.core.models import ResetRequest, User
from mfa_tui.core.services.guard import authorize, refusals_audited
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.users import require_user


@dataclass(frozen=True)
class ResetDecision:
    status: str  # approved | denied
    decided_by: str
    decided_at: datetime

    @property
    def message(self) -> str:
        if self.status == "approved":
            return "Your request to reset your second factor was approved: set up a new one now."
        return "Your request to reset your second factor was denied; contact the helpdesk."


class ResetRequests:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def request(self, user_id: int) -> bool:
        """File a request for a user who passed the password step; False if one is already open."""
        now = self.ctx.clock.now()
        try:
            with self.ctx.db.write() as session:
                user = session.get(User, user_id)
                if user is None:
                    raise NotFound("That user no longer exists.")
                session.add(ResetRequest(user_id=user_id, created_at=now))
                session.flush()
                self.ctx.audit.append(
                    session, AuditEntry(user.username, "reset_request.create", user.username), now
                )
        except ConflictError:  # the unique index on open requests: one is already waiting
            return False
        return True

    def approve(self, actor: Actor, username: str, *, override_reason: str | None = None) -> None:
        """Like a reset by staff, it needs a caller they verified (or an administrator's reason):
        the request came from a session that proved only the password."""
        self._decide(actor, username, "approved", override_reason)

    def deny(self, actor: Actor, username: str) -> None:
        self._decide(actor, username, "denied")

    def _decide(
        self, actor: Actor, username: str, status: str, override_reason: str | None = None
    ) -> None:
        from mfa_tui.core.services.caller_check import require_verified_caller

        now = self.ctx.clock.now()
        with refusals_audited(self.ctx, actor), self.ctx.db.write() as session:
            user = require_user(session, username)
            authorize(actor, Action.MANAGE_MFA, user)
            caller = (
                require_verified_caller(session, actor, user, now, override_reason)
                if status == "approved"
                else None
            )
            decided = session.execute(
                update(ResetRequest)
                .where(col(ResetRequest.user_id) == user.id, col(ResetRequest.status) == "pending")
                .values(status=status, decided_by=actor.name, decided_at=now)
            ).rowcount  # type: ignore[attr-defined]
            if not decided:
                raise InputError(f"'{user.username}' has no open reset request.")
            if status == "approved":
                MfaService(self.ctx).apply_reset(session, actor, user, now, caller)
            self.ctx.audit.append(
                session, AuditEntry(actor.name, f"reset_request.{status}", user.username), now
            )

    def decision_to_tell(self, user_id: int) -> ResetDecision | None:
        """The latest decision the user has not been told yet; telling marks it told."""
        now = self.ctx.clock.now()
        with self.ctx.db.write() as session:
            request = session.exec(
                select(ResetRequest)
                .where(
                    ResetRequest.user_id == user_id,
                    col(ResetRequest.status) != "pending",
                    col(ResetRequest.notified_at).is_(None),
                )
                .order_by(col(ResetRequest.decided_at).desc())
            ).first()
            if request is None or request.decided_at is None or request.decided_by is None:
                return None
            session.execute(
                update(ResetRequest)
                .where(
                    col(ResetRequest.user_id) == user_id, col(ResetRequest.notified_at).is_(None)
                )
                .values(notified_at=now)
            )
            return ResetDecision(request.status, request.decided_by, request.decided_at)

    def has_open_request(self, user_id: int) -> bool:
        with self.ctx.db.read() as session:
            return (
                session.exec(
                    select(ResetRequest.id).where(
                        ResetRequest.user_id == user_id, ResetRequest.status == "pending"
                    )
                ).first()
                is not None
            )
