"""Helpdesk: verify that the person on the phone is the user, before a reset or an access pass.

The agent types the code the caller reads aloud from their factor (after sending an Email/SMS
code or a Duo push to it), or, for a caller who lost the factor, a code sent to the registered
email address or phone, or one of their backup codes. Every check goes through
``MfaService.verify``: the same replay refusal, consumption and lockout as a login.

A verification counts for the agent who made it, for ``VERIFICATION_LIFETIME``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from mfa_tui.core.access import Action, Actor
from mfa_tui.core.audit import AuditEntry
from mfa_tui.core.context import Context
from mfa_tui.core.delivery import codes, email_ready, masked_address, masked_phone, sms_ready
from mfa_tui.core.errors import InputError
from mfa_tui.core.factors import FactorEnv, factor_for
from mfa_tui.core.kinds import Role
from mfa_tui.core.models import CallerVerification, MfaType, User
from mfa_tui.core.services.guard import Refusal, authorize, refusals_audited
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import require_user
from mfa_tui.core.settings import Settings

VERIFICATION_LIFETIME = timedelta(minutes=15)
LOST_CODE_PURPOSE = "caller-check"
# How the caller proves who they are.
METHODS = ("factor", "backup_code", "lost_code")
METHOD_LABELS = {
    "factor": "a code from their second factor",
    "backup_code": "a backup code",
    "lost_code": "a code sent to their registered address",
}


@dataclass(frozen=True)
class CallerStatus:
    verified: bool
    method: str | None = None
    verified_at: datetime | None = None
    expires_at: datetime | None = None

    @property
    def message(self) -> str:
        if not self.verified or self.verified_at is None or self.expires_at is None:
            return "Caller not verified."
        return (
            f"Caller verified at {self.verified_at:%H:%M:%S} UTC with "
            f"{METHOD_LABELS.get(self.method or '', self.method)}; valid until "
            f"{self.expires_at:%H:%M} UTC."
        )


@dataclass(frozen=True)
class CheckResult:
    """The status after a check, the sentence for the agent, and a RADIUS Access-Challenge's
    state to hand back with the caller's next answer (``message`` is then its prompt)."""

    status: CallerStatus
    message: str
    state: str | None = None


def require_verified_caller(
    session: Session, actor: Actor, user: User, now: datetime, override_reason: str | None
) -> dict[str, object]:
    """Inside the caller's transaction: how the caller was verified, for the audit entry, or a
    refusal. Helpdesk needs a verification of its own; an administrator may instead give a reason.
    The CLI is trusted like root (SPEC §1) and is not asked: it is audited as ``cli``."""
    if actor.is_cli:
        return {"caller": "cli", **({"reason": override_reason} if override_reason else {})}
    recent = _latest(session, actor, user.id, now)  # type: ignore[arg-type]
    if recent is not None:
        return {"caller": "verified", "caller_method": recent.method}
    reason = (override_reason or "").strip()
    if actor.role == Role.ADMIN and reason:
        return {"caller": "override", "reason": reason}
    if actor.role == Role.ADMIN:
        message = "Verify the caller first, or give a reason to override the check."
    else:
        message = "Verify the caller first (v on Administration – Users): a reset or temporary access pass needs a verified caller."
    raise Refusal(message, Action.MANAGE_MFA, user.username)


def _latest(
    session: Session, actor: Actor, user_id: int, now: datetime
) -> CallerVerification | None:
    return session.exec(
        select(CallerVerification)
        .where(
            CallerVerification.user_id == user_id,
            CallerVerification.agent == actor.name,
            col(CallerVerification.expires_at) > now,
        )
        .order_by(col(CallerVerification.verified_at).desc())
    ).first()


def lost_channel(settings: Settings, user: User) -> str | None:
    """Where a code for a caller who lost their factor goes: email first, else SMS, if set up."""
    if user.email and email_ready(settings):
        return "email"
    if user.phone and sms_ready(settings):
        return "sms"
    return None


class CallerCheck:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.settings = SettingsStore(ctx)

    def status(self, agent: Actor, username: str) -> CallerStatus:
        """Whether ``agent`` verified this caller recently; refused (and audited) when the agent
        may not act on the user at all, so a screen says so before asking for anything."""
        now = self.ctx.clock.now()
        with refusals_audited(self.ctx, agent), self.ctx.db.read() as session:
            user = require_user(session, username)
            authorize(agent, Action.MANAGE_MFA, user)
            recent = _latest(session, agent, user.id, now)  # type: ignore[arg-type]
        if recent is None:
            return CallerStatus(False)
        return CallerStatus(True, recent.method, recent.verified_at, recent.expires_at)

    def send_challenge(self, agent: Actor, username: str) -> str | None:
        """Send an email/SMS code or a Duo push to the caller's current factor; None for TOTP."""
        from mfa_tui.core.services.mfa import MfaService

        self._authorize(agent, username)
        return MfaService(self.ctx).send_challenge(username)

    def send_lost_code(self, agent: Actor, username: str) -> str:
        """A code to the registered email address (or phone) of a caller who lost their factor."""
        user = self._authorize(agent, username)
        settings = self.settings.load()
        channel = lost_channel(settings, user)
        if channel is None:
            raise InputError(
                f"'{user.username}' has no email address or phone that mfa-tui can send to "
                "(or Email/SMS delivery is not set up); use a backup code instead."
            )
        destination = user.email if channel == "email" else user.phone
        assert destination is not None and user.id is not None
        env = FactorEnv(self.ctx, settings, self.ctx.clock.now())
        factor = factor_for(MfaType.EMAIL if channel == "email" else MfaType.SMS)
        issued = codes.send_code(
            env,
            user_id=user.id,
            channel=channel,
            purpose=LOST_CODE_PURPOSE,
            binding=_binding(user),
            deliver=lambda code: factor.deliver(env, destination, code),  # type: ignore[attr-defined]
        )
        if issued.sent:
            with self.ctx.db.write() as session:
                self.ctx.audit.append(
                    session,
                    AuditEntry(agent.name, "caller.code_sent", user.username, {"channel": channel}),
                    env.now,
                )
        where = masked_address(destination) if channel == "email" else masked_phone(destination)
        return codes.sent_message(issued, where)

    def check(
        self, agent: Actor, username: str, code: str, method: str, state: str | None = None
    ) -> CheckResult:
        """Check what the caller read aloud; a right code is consumed and recorded."""
        from mfa_tui.core.services.mfa import MfaService, SentCode

        if method not in METHODS:
            raise InputError(
                f"'{method}' is not a way to verify a caller; use {', '.join(METHODS)}."
            )
        user = self._authorize(agent, username)
        sent_code = None
        if method == "lost_code":
            channel = lost_channel(self.settings.load(), user) or "email"
            sent_code = SentCode(channel, LOST_CODE_PURPOSE, _binding(user), "lost_code")
        outcome = MfaService(self.ctx).verify(
            user.username,
            code,
            actor_name=agent.name,
            state=state,
            methods=frozenset({method}) if method != "lost_code" else frozenset(),
            sent_code=sent_code,
        )
        if outcome.reason == "challenge":
            return CheckResult(CallerStatus(False), outcome.message, outcome.state)
        if outcome.reason == "not_required":
            return CheckResult(
                CallerStatus(False),
                f"'{user.username}' has no second factor to check: send a code to their "
                "registered address instead.",
            )
        if outcome.reason == "not_enrolled":
            return CheckResult(
                CallerStatus(False),
                f"'{user.username}' has no {METHOD_LABELS[method]} to check; try another way.",
            )
        if not outcome.accepted:
            if outcome.reason == "unavailable":
                return CheckResult(CallerStatus(False), outcome.message)
            return CheckResult(CallerStatus(False), f"Not verified: {outcome.message}")
        now = self.ctx.clock.now()
        with self.ctx.db.write() as session:
            row = CallerVerification(
                user_id=user.id,  # type: ignore[arg-type]
                agent=agent.name,
                method=method,
                verified_at=now,
                expires_at=now + VERIFICATION_LIFETIME,
            )
            session.add(row)
            self.ctx.audit.append(
                session,
                AuditEntry(agent.name, "caller.verified", user.username, {"method": method}),
                now,
            )
        status = CallerStatus(True, method, now, now + VERIFICATION_LIFETIME)
        return CheckResult(status, status.message)

    def _authorize(self, agent: Actor, username: str) -> User:
        with refusals_audited(self.ctx, agent), self.ctx.db.read() as session:
            user = require_user(session, username)
            authorize(agent, Action.MANAGE_MFA, user)
            session.expunge(user)
            return user


def _binding(user: User) -> str:
    return f"{LOST_CODE_PURPOSE}:{user.id}"
