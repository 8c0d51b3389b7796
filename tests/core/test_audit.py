"""The audit chain: appended by services, every kind of tampering detected, no forks under load."""

from __future__ import annotations

import threading
from datetime import UTC

import pytest
from sqlalchemy import text
from sqlmodel import col, select

from mfa_tui.core.access import Actor
from mfa_tui.core.audit import ChainReport, _digest
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.config import Config
from mfa_tui.core.context import Context, open_context
from mfa_tui.core.crypto import SecretBox, new_key
from mfa_tui.core.models import AuditEvent
from mfa_tui.core.services.users import UserService

CONTENT = ("at", "actor", "action", "target", "details", "prev_hash", "hash")


def _verify(ctx: Context) -> ChainReport:
    with ctx.db.read() as session:
        return ctx.audit.verify(session)


def _head(ctx: Context) -> tuple[int, str]:
    with ctx.db.read() as session:
        row = session.execute(text("SELECT count, last_hash FROM audit_head WHERE id = 1")).one()
    return row[0], row[1]


def _seqs(ctx: Context) -> list[int]:
    with ctx.db.read() as session:
        return list(session.execute(text("SELECT seq FROM audit_events ORDER BY seq")).scalars())


def _sql(ctx: Context, statement: str, **params: object) -> None:
    with ctx.db.write() as session:
        session.execute(text(statement), params)


@pytest.fixture
def populated(ctx: Context, cli_actor: Actor) -> Context:
    users = UserService(ctx)
    for name in ("alice", "bob", "carol", "dave", "erin"):
        users.create(cli_actor, name, email=f"{name}@example.com")
    return ctx


def test_entries_appended_by_services_verify(populated: Context) -> None:
    report = _verify(populated)
    count, last_hash = _head(populated)
    assert report == ChainReport(True, count, last_hash)
    assert count == 5
    assert _seqs(populated) == [1, 2, 3, 4, 5]


def test_an_empty_log_verifies(ctx: Context) -> None:
    report = _verify(ctx)
    assert report.ok and report.count == 0


def test_an_edited_row_is_detected(populated: Context) -> None:
    _sql(populated, "UPDATE audit_events SET details = :d WHERE seq = 3", d='{"after":{}}')
    report = _verify(populated)
    assert not report.ok
    assert report.first_bad_seq == 3
    assert "changed" in (report.problem or "")


def test_an_edited_actor_is_detected(populated: Context) -> None:
    _sql(populated, "UPDATE audit_events SET actor = 'someone-else' WHERE seq = 2")
    report = _verify(populated)
    assert (report.ok, report.first_bad_seq) == (False, 2)


def test_a_deleted_middle_row_is_detected(populated: Context) -> None:
    _sql(populated, "DELETE FROM audit_events WHERE seq = 3")
    report = _verify(populated)
    assert not report.ok
    assert report.first_bad_seq == 3
    assert "missing" in (report.problem or "")


def test_a_deleted_middle_row_with_renumbered_successors_is_detected(populated: Context) -> None:
    _sql(populated, "DELETE FROM audit_events WHERE seq = 3")
    _sql(populated, "UPDATE audit_events SET seq = 3 WHERE seq = 4")
    _sql(populated, "UPDATE audit_events SET seq = 4 WHERE seq = 5")
    report = _verify(populated)
    assert (report.ok, report.first_bad_seq) == (False, 3)


def test_swapped_rows_are_detected(populated: Context) -> None:
    columns = ", ".join(CONTENT)
    with populated.db.read() as session:
        rows = {
            row.seq: row
            for row in session.execute(
                text(f"SELECT seq, {columns} FROM audit_events WHERE seq IN (2, 3)")
            )
        }
    assignments = ", ".join(f"{name} = :{name}" for name in CONTENT)
    for seq, source in ((2, rows[3]), (3, rows[2])):
        _sql(
            populated,
            f"UPDATE audit_events SET {assignments} WHERE seq = :seq",
            seq=seq,
            **{name: getattr(source, name) for name in CONTENT},
        )
    report = _verify(populated)
    assert not report.ok
    assert report.first_bad_seq == 2


def test_a_cut_tail_is_detected_from_the_head(populated: Context) -> None:
    count, last_hash = _head(populated)
    _sql(populated, "DELETE FROM audit_events WHERE seq = :seq", seq=count)
    report = _verify(populated)
    assert not report.ok
    assert report.first_bad_seq == count
    assert (report.count, report.head_hash) == (count, last_hash)
    assert str(count) in (report.problem or "") and "head" in (report.problem or "")


def test_a_report_names_the_head_even_when_broken(populated: Context) -> None:
    count, last_hash = _head(populated)
    _sql(populated, "UPDATE audit_events SET target = 'mallory' WHERE seq = 1")
    report = _verify(populated)
    assert (report.ok, report.first_bad_seq) == (False, 1)
    assert (report.count, report.head_hash) == (count, last_hash)
    assert len(report.head_hash) == 64


def _rewrite_chain(ctx: Context, key: bytes, from_seq: int, details: str) -> None:
    """Edit row ``from_seq`` and recompute every later link and the head, as a forger would."""
    with ctx.db.write() as session:
        rows = list(session.exec(select(AuditEvent).order_by(col(AuditEvent.seq))).all())
        prev = rows[from_seq - 2].hash if from_seq > 1 else rows[0].prev_hash
        for row in rows[from_seq - 1 :]:
            row_details = details if row.seq == from_seq else row.details
            digest = _digest(
                key,
                row.seq,
                row.at.astimezone(UTC),
                (row.actor, row.action, row.target, row_details),
                prev,
            )
            session.execute(
                text(
                    "UPDATE audit_events SET details = :d, prev_hash = :p, hash = :h WHERE seq = :s"
                ),
                {"d": row_details, "p": prev, "h": digest, "s": row.seq},
            )
            prev = digest
        session.execute(text("UPDATE audit_head SET last_hash = :h WHERE id = 1"), {"h": prev})


def test_a_rewritten_chain_needs_the_key(populated: Context) -> None:
    _rewrite_chain(populated, SecretBox(new_key()).derive("audit-chain"), 2, '{"after":{}}')
    report = _verify(populated)
    assert (report.ok, report.first_bad_seq) == (False, 2)


def test_a_chain_rewritten_with_the_key_verifies(populated: Context) -> None:
    """The forgery above is otherwise faithful: only the key stops it."""
    _rewrite_chain(populated, populated.box.derive("audit-chain"), 2, '{"after":{}}')
    assert _verify(populated).ok


def test_details_never_contain_a_password_hash(ctx: Context, cli_actor: Actor) -> None:
    users = UserService(ctx)
    users.create(cli_actor, "frank", password="correct horse battery")
    users.set_password(cli_actor, "frank", "another good passphrase")
    with ctx.db.read() as session:
        rows = list(session.execute(text("SELECT action, details FROM audit_events")))
        stored_hash = session.execute(
            text("SELECT password_hash FROM users WHERE username = 'frank'")
        ).scalar_one()
    assert {row.action for row in rows} == {"user.create", "user.set_password"}
    assert stored_hash.startswith("$argon2id$")
    for row in rows:
        assert "argon2" not in row.details
        assert "password_hash" not in row.details
        assert "correct horse" not in row.details and "another good" not in row.details


def test_concurrent_appends_never_fork(config: Config, clock: FixedClock, cli_actor: Actor) -> None:
    """Two processes' worth of writers (separate engines and sessions) appending at once."""
    setup = open_context(config, clock)
    contexts = [open_context(config, clock) for _ in range(2)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def create_many(worker: int) -> None:
        try:
            users = UserService(contexts[worker])
            barrier.wait(timeout=10)
            for number in range(20):
                users.create(cli_actor, f"w{worker}-user{number:02d}")
        except BaseException as error:  # surfaced below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=create_many, args=(worker,)) for worker in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors
        assert UserService(setup).count() == 40
        report = _verify(setup)
        assert report.ok, report.problem
        assert report.count == 40
        assert _seqs(setup) == list(range(1, 41))
        with setup.db.read() as session:
            prev_hashes = list(
                session.execute(text("SELECT prev_hash FROM audit_events")).scalars()
            )
        assert len(set(prev_hashes)) == 40  # no two rows follow the same row: no fork
    finally:
        for context in (setup, *contexts):
            context.close()
