"""Lockout after failed second-factor attempts, safe across processes.

An attempt is *reserved* (one conditional UPDATE) before the code is checked, so parallel
guessers share one counter and get no more than ``lockout.attempts`` guesses per lock period.
A success clears the counter; reaching the limit locks for ``lockout.minutes``, doubled on each
consecutive lock, or until staff unlock when the setting is 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from mfa_tui.core.db import Database
from mfa_tui.core.models import Lockout
from mfa_tui.core.settings import Settings

MAX_DOUBLINGS = 10


@dataclass(frozen=True)
class LockState:
    failed_attempts: int = 0
    locked_at: datetime | None = None
    consecutive_locks: int = 0

    def locked_until(self, settings: Settings) -> datetime | None:
        """When the lock ends; ``datetime.max`` for a lock only staff can lift; None if not locked."""
        if self.locked_at is None:
            return None
        if settings.lockout_minutes == 0:
            return datetime.max.replace(tzinfo=self.locked_at.tzinfo)
        doublings = min(max(self.consecutive_locks - 1, 0), MAX_DOUBLINGS)
        return self.locked_at + timedelta(minutes=settings.lockout_minutes * 2**doublings)

    def is_locked(self, settings: Settings, now: datetime) -> bool:
        until = self.locked_until(settings)
        return until is not None and now < until


def state_of(row: Lockout | None) -> LockState:
    if row is None:
        return LockState()
    return LockState(row.failed_attempts, row.locked_at, row.consecutive_locks)


def reserve_attempt(db: Database, user_id: int, settings: Settings, now: datetime) -> bool:
    """Take one attempt from the budget before checking a code; False when the user is locked."""
    with db.write() as session:
        ensure_row(session, user_id)
        state = state_of(session.get(Lockout, user_id))
        if state.locked_at is not None and not state.is_locked(settings, now):
            # The lock ran out: a fresh budget, but consecutive_locks remembers for the next one.
            session.execute(
                update(Lockout)
                .where(col(Lockout.user_id) == user_id, col(Lockout.locked_at) == state.locked_at)
                .values(failed_attempts=0, locked_at=None)
            )
        reserved = session.execute(
            update(Lockout)
            .where(
                col(Lockout.user_id) == user_id,
                col(Lockout.locked_at).is_(None),
                col(Lockout.failed_attempts) < settings.lockout_attempts,
            )
            .values(failed_attempts=col(Lockout.failed_attempts) + 1)
        )
        return reserved.rowcount == 1  # type: ignore[attr-defined]


def ensure_row(session: Session, user_id: int) -> None:
    """Create the user's counter row if missing; two processes doing so at once is fine."""
    dialect = session.get_bind().dialect.name
    statement = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(Lockout).values(
        user_id=user_id, failed_attempts=0, consecutive_locks=0, password_failures=0
    )
    session.execute(statement.on_conflict_do_nothing(index_elements=["user_id"]))


def release_attempt(db: Database, user_id: int) -> None:
    """Give back a reserved attempt that could not be checked (a provider failed, not the user)."""
    with db.write() as session:
        session.execute(
            update(Lockout)
            .where(col(Lockout.user_id) == user_id, col(Lockout.failed_attempts) > 0)
            .values(failed_attempts=col(Lockout.failed_attempts) - 1)
        )


def record_success(session: Session, user_id: int) -> None:
    session.execute(
        update(Lockout)
        .where(col(Lockout.user_id) == user_id)
        .values(failed_attempts=0, locked_at=None, consecutive_locks=0)
    )


def record_failure(session: Session, user_id: int, settings: Settings, now: datetime) -> bool:
    """Lock the user if this failure used up the budget; True when this call locked them."""
    locked = session.execute(
        update(Lockout)
        .where(
            col(Lockout.user_id) == user_id,
            col(Lockout.locked_at).is_(None),
            col(Lockout.failed_attempts) >= settings.lockout_attempts,
        )
        .values(locked_at=now, consecutive_locks=col(Lockout.consecutive_locks) + 1)
    )
    return locked.rowcount == 1  # type: ignore[attr-defined]


def unlock(session: Session, user_id: int) -> bool:
    """Clear the lock and the counter; True if the user was locked or had failures."""
    row = session.exec(select(Lockout).where(Lockout.user_id == user_id)).one_or_none()
    if row is None or (row.failed_attempts == 0 and row.locked_at is None):
        return False
    record_success(session, user_id)
    return True
