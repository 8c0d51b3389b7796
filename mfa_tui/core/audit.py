"""The audit log: append-only, HMAC-chained, appended under the head row's lock.

Each row's HMAC covers its sequence number, content and the previous row's HMAC, keyed from the
secret key: editing, deleting or reordering a row breaks the chain, and rewriting the chain needs
the key. ``audit_head`` holds the count and last hash; appends lock it (``SELECT … FOR UPDATE`` on
PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so two writers never fork the chain.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from sqlalchemy import update
from sqlmodel import Session, col, select

from mfa_tui.core.crypto import SecretBox
from mfa_tui.core.models import GENESIS_HASH, AuditEvent, AuditHead
from mfa_tui.core.text import csv_cell, escape_like


@dataclass(frozen=True)
class AuditEntry:
    """What a service wants recorded; no secrets, ever."""

    actor: str
    action: str
    target: str | None = None
    details: dict[str, Any] | None = None


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    at: datetime
    actor: str
    action: str
    target: str | None
    details: dict[str, Any]


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    count: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None


def _digest(
    key: bytes, seq: int, at: datetime, entry_fields: tuple[Any, ...], prev_hash: str
) -> str:
    payload = json.dumps(
        [seq, at.isoformat(timespec="microseconds"), *entry_fields, prev_hash],
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hmac.new(key, payload.encode("ascii"), hashlib.sha256).hexdigest()


def _canonical_details(details: dict[str, Any] | None) -> str:
    return json.dumps(details or {}, sort_keys=True, separators=(",", ":"), default=str)


class AuditLog:
    def __init__(self, box: SecretBox) -> None:
        self._key = box.derive("audit-chain")

    def append_many(self, session: Session, entries: Iterable[AuditEntry], at: datetime) -> int:
        """Append entries in the caller's transaction (so the change and its record commit together)."""
        at = at.astimezone(UTC)
        head = session.exec(select(AuditHead).where(AuditHead.id == 1).with_for_update()).one()
        seq, last_hash = head.count, head.last_hash
        rows = []
        for entry in entries:
            seq += 1
            details = _canonical_details(entry.details)
            digest = _digest(
                self._key, seq, at, (entry.actor, entry.action, entry.target, details), last_hash
            )
            rows.append(
                {
                    "seq": seq,
                    "at": at,
                    "actor": entry.actor,
                    "action": entry.action,
                    "target": entry.target,
                    "details": details,
                    "prev_hash": last_hash,
                    "hash": digest,
                }
            )
            last_hash = digest
        if rows:
            session.execute(AuditEvent.__table__.insert(), rows)  # type: ignore[attr-defined]
            session.execute(
                update(AuditHead)
                .where(col(AuditHead.id) == 1)
                .values(count=seq, last_hash=last_hash)
            )
        return len(rows)

    def append(self, session: Session, entry: AuditEntry, at: datetime) -> None:
        self.append_many(session, [entry], at)

    def verify(self, session: Session) -> ChainReport:
        head = session.exec(select(AuditHead).where(AuditHead.id == 1)).one()
        expected_prev = GENESIS_HASH
        expected_seq = 0
        for event in _all_events(session):
            expected_seq += 1
            if event.seq != expected_seq:
                return ChainReport(
                    False,
                    head.count,
                    head.last_hash,
                    expected_seq,
                    f"row {expected_seq} is missing",
                )
            fields = (event.actor, event.action, event.target, event.details)
            digest = _digest(
                self._key, event.seq, event.at.astimezone(UTC), fields, event.prev_hash
            )
            if event.prev_hash != expected_prev:
                return ChainReport(
                    False,
                    head.count,
                    head.last_hash,
                    event.seq,
                    f"row {event.seq} does not follow row {event.seq - 1}",
                )
            if not hmac.compare_digest(digest, event.hash):
                return ChainReport(
                    False, head.count, head.last_hash, event.seq, f"row {event.seq} was changed"
                )
            expected_prev = event.hash
        if expected_seq != head.count or expected_prev != head.last_hash:
            return ChainReport(
                False,
                head.count,
                head.last_hash,
                expected_seq + 1,
                f"the log ends at row {expected_seq} but its head records {head.count} rows",
            )
        return ChainReport(True, head.count, head.last_hash)


def _all_events(session: Session, batch: int = 5000) -> Iterator[AuditEvent]:
    last = 0
    while True:
        chunk = session.exec(
            select(AuditEvent)
            .where(AuditEvent.seq > last)
            .order_by(col(AuditEvent.seq))
            .limit(batch)
        ).all()
        if not chunk:
            return
        yield from chunk
        last = chunk[-1].seq


def list_events(
    session: Session,
    *,
    limit: int | None = None,
    before_seq: int | None = None,
    text: str | None = None,
) -> list[AuditRecord]:
    """Newest first; ``text`` filters on actor, action or target (case-insensitive)."""
    query = select(AuditEvent).order_by(col(AuditEvent.seq).desc())
    if before_seq is not None:
        query = query.where(AuditEvent.seq < before_seq)
    if text:
        pattern = f"%{escape_like(text)}%"
        query = query.where(
            col(AuditEvent.actor).ilike(pattern, escape="\\")
            | col(AuditEvent.action).ilike(pattern, escape="\\")
            | col(AuditEvent.target).ilike(pattern, escape="\\")
        )
    if limit is not None:
        query = query.limit(limit)
    return [
        AuditRecord(e.seq, e.at, e.actor, e.action, e.target, json.loads(e.details))
        for e in session.exec(query).all()
    ]


def write_csv(events: Iterable[AuditRecord], out: TextIO) -> None:
    """Events as CSV with a header, every text cell safe to open in a spreadsheet."""
    writer = csv.writer(out)
    writer.writerow(["seq", "at", "actor", "action", "target", "details"])
    for e in events:
        writer.writerow(
            [
                e.seq,
                e.at.isoformat(),
                csv_cell(e.actor),
                csv_cell(e.action),
                csv_cell(e.target),
                csv_cell(json.dumps(e.details)),
            ]
        )
