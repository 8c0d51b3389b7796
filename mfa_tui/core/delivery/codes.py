"""Codes sent by email or SMS: issued, throttled and consumed here, kept only as keyed hashes.

A code is bound to one credential (its id is part of the hashed value) and one purpose
(``enroll`` or ``login``), so a code sent for one use never works for another. It is valid for
``LIFETIME``, allows ``MAX_ATTEMPTS`` guesses (each reserved by a conditional UPDATE before the
code is compared) and is consumed by one conditional UPDATE, so it is accepted at most once even
when two processes check it at the same moment. A second challenge within ``RESEND_AFTER`` sends
nothing while the earlier code still works.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, update
from sqlmodel import col, select

from mfa_tui.core.factors import FactorEnv
from mfa_tui.core.models import DeliveredCode, User

LIFETIME = timedelta(minutes=10)
RESEND_AFTER = timedelta(seconds=60)
MAX_ATTEMPTS = 5
DIGITS = 6
HASH_PURPOSE = "delivered-code"
_SEPARATORS = re.compile(r"[\s-]")


@dataclass(frozen=True)
class Issued:
    """``sent`` is False when an earlier code, sent less than ``RESEND_AFTER`` ago, still works."""

    sent: bool
    expires_at: datetime


def new_code() -> str:
    return f"{secrets.randbelow(10**DIGITS):0{DIGITS}d}"


def well_formed(code: str) -> bool:
    """Could ``code`` be a sent code at all? A backup code or a word never uses up an attempt."""
    return re.fullmatch(rf"\d{{{DIGITS}}}", _SEPARATORS.sub("", code)) is not None


def sent_message(issued: Issued, where: str) -> str:
    """What the person is told once a code went out (or an earlier one still works)."""
    if issued.sent:
        minutes = int(LIFETIME.total_seconds() // 60)
        return f"A {DIGITS}-digit code was sent to {where}; it is valid for {minutes} minutes."
    return (
        f"A code was sent to {where} less than a minute ago and still works: enter it "
        "(a new one can be sent after a minute)."
    )


def send_code(
    env: FactorEnv,
    *,
    user_id: int,
    channel: str,
    purpose: str,
    binding: str,
    deliver: Callable[[str], None],
) -> Issued:
    """Store a new code's hash, then ``deliver(code)`` outside any transaction.

    If delivery fails the code is deleted before the error goes on: nothing usable is left behind,
    and the next attempt is not throttled by a code nobody received.
    """
    now = env.now
    code = new_code()
    with env.ctx.db.write() as session:
        # One sender at a time per user, on PostgreSQL too (SQLite's BEGIN IMMEDIATE already is).
        session.exec(select(User.id).where(User.id == user_id).with_for_update()).first()
        session.execute(
            delete(DeliveredCode).where(
                col(DeliveredCode.user_id) == user_id,
                or_(col(DeliveredCode.expires_at) <= now, col(DeliveredCode.used_at).is_not(None)),
            )
        )
        recent = session.exec(
            select(DeliveredCode)
            .where(*_live(user_id, channel, purpose, now))
            .where(col(DeliveredCode.created_at) > now - RESEND_AFTER)
            .order_by(col(DeliveredCode.created_at).desc())
        ).first()
        if recent is not None:
            return Issued(sent=False, expires_at=recent.expires_at)
        row = DeliveredCode(
            user_id=user_id,
            channel=channel,
            purpose=purpose,
            code_hash=_hash(env, binding, code),
            created_at=now,
            expires_at=now + LIFETIME,
        )
        session.add(row)
        session.flush()
        row_id = row.id
    try:
        deliver(code)
    except BaseException:
        with env.ctx.db.write() as session:
            session.execute(delete(DeliveredCode).where(col(DeliveredCode.id) == row_id))
        raise
    with env.ctx.db.write() as session:
        # Only the newest code works: earlier ones still live are retired now it has gone out.
        session.execute(
            update(DeliveredCode)
            .where(*_live(user_id, channel, purpose, now), col(DeliveredCode.id) != row_id)
            .values(expires_at=now)
        )
    return Issued(sent=True, expires_at=now + LIFETIME)


def check_code(
    env: FactorEnv, *, user_id: int, channel: str, purpose: str, binding: str, code: str
) -> bool:
    """True once for the right code while it is live; every guess uses one of its attempts."""
    now = env.now
    normalized = _SEPARATORS.sub("", code)
    with env.ctx.db.write() as session:
        reserved = session.execute(
            update(DeliveredCode)
            .where(*_live(user_id, channel, purpose, now))
            .values(attempts=DeliveredCode.attempts + 1)
        ).rowcount  # type: ignore[attr-defined]
        if not reserved or not well_formed(normalized):
            return False
        consumed = session.execute(
            update(DeliveredCode)
            .where(
                col(DeliveredCode.user_id) == user_id,
                col(DeliveredCode.channel) == channel,
                col(DeliveredCode.purpose) == purpose,
                col(DeliveredCode.code_hash) == _hash(env, binding, normalized),
                col(DeliveredCode.used_at).is_(None),
                col(DeliveredCode.expires_at) > now,
                # The attempt reserved above is included: the fifth guess may still be right.
                col(DeliveredCode.attempts) <= MAX_ATTEMPTS,
            )
            .values(used_at=now)
        ).rowcount  # type: ignore[attr-defined]
        return consumed == 1


def _live(user_id: int, channel: str, purpose: str, now: datetime) -> tuple[object, ...]:
    return (
        col(DeliveredCode.user_id) == user_id,
        col(DeliveredCode.channel) == channel,
        col(DeliveredCode.purpose) == purpose,
        col(DeliveredCode.used_at).is_(None),
        col(DeliveredCode.expires_at) > now,
        col(DeliveredCode.attempts) < MAX_ATTEMPTS,
    )


def _hash(env: FactorEnv, binding: str, code: str) -> str:
    return env.ctx.box.keyed_hash(HASH_PURPOSE, f"{binding}:{code}")
