"""``mfa-tui keys rotate`` on SQLite and PostgreSQL: every secret re-sealed, nothing lost, crash-safe.

The crash tests run the real command in a child process told (``MFA_TUI_TEST_CRASH_AT``) to
SIGKILL itself right after one step; the next open must then work with exactly one of the two
keys, and every factor, backup code, delivery password and the audit chain must still work.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlmodel import Session, select

from mfa_tui.core import key_rotation
from mfa_tui.core.access import Actor
from mfa_tui.core.audit import list_events
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.config import SECRET_KEY_ENV_VAR, Config
from mfa_tui.core.context import KEY_ROTATED, Context, open_context
from mfa_tui.core.crypto import (
    encode_key,
    key_id_of,
    new_key,
    read_key_file,
    side_key_file,
    write_key_file,
)
from mfa_tui.core.errors import StorageError
from mfa_tui.core.models import MfaCredential
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import UserService
from tests.cli.conftest import Cli, assert_one_error_line
from tests.core.test_mfa_service import code_now, enroll

SMTP_PASSWORD = "smtp-pässword-42"
SMS_TOKEN = "twilio-token-0123456789"
USERS = ("alice", "bob")
MFA_TUI = (sys.executable, "-m", "mfa_tui")


@dataclass
class Seeded:
    secrets: dict[str, bytes]
    backup_codes: list[str]


def seed(ctx: Context, clock: FixedClock) -> Seeded:
    """Two users with authenticators, backup codes for alice, and two secret delivery settings."""
    actor = Actor.cli()
    SettingsStore(ctx).set_many(
        actor,
        {"smtp.host": "mail.example.com", "smtp.password": SMTP_PASSWORD},
    )
    SettingsStore(ctx).set_many(actor, {"sms.auth_token": SMS_TOKEN})
    secrets = {}
    for name in USERS:
        UserService(ctx).create(actor, name)
        secrets[name] = enroll(ctx, clock, actor, name)
    codes = MfaService(ctx).generate_backup_codes(actor, "alice")
    clock.advance(seconds=30)  # the steps used to enroll are spent
    return Seeded(secrets, codes)


def assert_everything_works(ctx: Context, clock: FixedClock, seeded: Seeded) -> None:
    """Every user logs in with their authenticator and a backup code; secrets decrypt; chain OK."""
    clock.advance(seconds=60)
    service = MfaService(ctx)
    for name, secret in seeded.secrets.items():
        outcome = service.verify(name, code_now(secret, clock))
        assert (outcome.reason, outcome.method) == ("accepted", "totp"), name
    assert service.verify("alice", seeded.backup_codes[0]).method == "backup_code"
    assert not service.verify("alice", seeded.backup_codes[0]).accepted  # still single use
    settings = SettingsStore(ctx).load()
    assert settings["smtp.password"] == SMTP_PASSWORD
    assert settings["sms.auth_token"] == SMS_TOKEN
    with ctx.db.read() as session:
        report = ctx.audit.verify(session)
        credentials = session.exec(select(MfaCredential)).all()
    assert report.ok, report
    # Every sealed secret names the current key: nothing was left under the old one.
    assert {c.secret[2:14].decode() for c in credentials if c.secret} == {ctx.box.key_id}


def rotate_events(ctx: Context) -> int:
    with ctx.db.read() as session:
        return sum(1 for e in list_events(session, text="keys.rotate") if e.action == "keys.rotate")


@pytest.fixture
def cli(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Cli:
    monkeypatch.delenv(SECRET_KEY_ENV_VAR, raising=False)
    return Cli(db_url, tmp_path / "secret.key", monkeypatch, capsys)


def test_after_two_rotations_everything_still_works_and_the_old_key_is_refused(
    ctx: Context, config: Config, clock: FixedClock, cli: Cli, tmp_path: Path
) -> None:
    seeded = seed(ctx, clock)
    first_key = config.key_file.read_bytes()
    (tmp_path / "old.key").write_bytes(first_key)
    (tmp_path / "old.key").chmod(0o600)

    for _ in range(2):  # the second rotation re-seals the stored derivation root too
        result = cli("keys", "rotate")
        assert result.code == 0, result
        assert "re-encrypted" in result.out
    assert config.key_file.read_bytes() != first_key
    assert config.key_file.stat().st_mode & 0o777 == 0o600
    assert not side_key_file(config.key_file).exists()

    rotated = open_context(config, clock)
    try:
        assert rotated.box.key_id != ctx.box.key_id
        assert rotate_events(rotated) == 2
        assert_everything_works(rotated, clock, seeded)
    finally:
        rotated.close()
    verified = cli("audit", "list", "--verify")
    assert verified.code == 0, verified
    old = cli("users", "list", key_file=tmp_path / "old.key")
    assert_one_error_line(old, 3, "does not match this database")


def test_a_key_from_the_environment_is_refused_with_how_to_rotate(
    ctx: Context, config: Config, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_KEY_ENV_VAR, config.key_file.read_text())
    result = cli.raw(["--db", cli.db_url, "keys", "rotate"])
    assert_one_error_line(result, 2, SECRET_KEY_ENV_VAR, "--key-file FILE keys rotate")
    assert rotate_events(ctx) == 0
    assert not side_key_file(config.key_file).exists()


def test_an_open_during_a_rotation_waits_and_never_undoes_it(
    ctx: Context, config: Config, clock: FixedClock
) -> None:
    """A rotation that has written its side file holds a lock on it: an open must not delete it."""
    seeded = seed(ctx, clock)
    # The window by hand: a locked side file with a key the database does not use yet.
    pending = side_key_file(config.key_file)
    write_key_file(pending, new_key())
    holder = os.open(pending, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    opened: list[Context] = []
    waiter = threading.Thread(target=lambda: opened.append(open_context(config, clock)))
    waiter.start()
    waiter.join(1.0)
    assert waiter.is_alive(), "the open did not wait for the rotation's lock"
    assert pending.exists()
    os.close(holder)  # the "rotation" ends without committing: the open now rolls it back
    waiter.join(30)
    try:
        assert opened and not pending.exists()
        assert_everything_works(opened[0], clock, seeded)
    finally:
        for context in opened:
            context.close()


def test_a_leftover_side_file_is_judged_and_removed_under_its_lock(
    ctx: Context, config: Config, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between judging a leftover side file and removing it, no new rotation may take it over:
    a rotation starts by taking the side file's lock, so the lock must still be held when the
    file is removed — or the removal could hit the new rotation's file and lose its key."""
    seed(ctx, clock)
    pending = side_key_file(config.key_file)
    write_key_file(pending, new_key())  # a leftover: the database never used this key
    locked_while_judging: list[bool] = []
    judge = key_rotation._file_matches

    def judging(key_file: Path, checks: list) -> bool:  # type: ignore[type-arg]
        probe = os.open(pending, os.O_RDONLY)
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked_while_judging.append(False)
        except BlockingIOError:
            locked_while_judging.append(True)
        finally:
            os.close(probe)
        return judge(key_file, checks)

    monkeypatch.setattr(key_rotation, "_file_matches", judging)
    open_context(config, clock).close()
    assert locked_while_judging == [True] and not pending.exists()


@pytest.mark.slow
@pytest.mark.parametrize("step", key_rotation.STEPS)
def test_a_rotation_killed_after_each_step_leaves_one_working_key(
    ctx: Context, config: Config, clock: FixedClock, step: str
) -> None:
    seeded = seed(ctx, clock)
    old_key, old_key_id = ctx.box.key, ctx.box.key_id
    env = {k: v for k, v in os.environ.items() if k != SECRET_KEY_ENV_VAR}
    env[key_rotation.CRASH_ENV_VAR] = step
    rotation = subprocess.run(
        [
            *MFA_TUI,
            "--db",
            config.database_url,
            "--key-file",
            str(config.key_file),
            "keys",
            "rotate",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rotation.returncode == -signal.SIGKILL, rotation
    committed = key_rotation.STEPS.index(step) >= key_rotation.STEPS.index("database-committed")
    assert side_key_file(config.key_file).exists() == (step != "key-file-replaced")

    reopened = open_context(config, clock)  # finishes or rolls back the rotation
    try:
        assert not side_key_file(config.key_file).exists()
        key_in_file = key_id_of(read_key_file(config.key_file))
        assert reopened.box.key_id == key_in_file
        assert (key_in_file != old_key_id) == committed
        assert rotate_events(reopened) == int(committed)
        assert_everything_works(reopened, clock, seeded)
    finally:
        reopened.close()
    if committed:  # the other key is refused, with the usual clear error
        with pytest.raises(StorageError, match="does not match this database"):
            open_context(Config(config.database_url, config.key_file, encode_key(old_key)), clock)


def test_an_open_between_creating_and_locking_the_side_file_never_loses_the_new_key(
    ctx: Context, config: Config, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``verify --pam`` at an SSH login opens the database just as the rotation has created its
    new key file but not locked it yet: the open finishes "interrupted" rotations, so it must not
    find an unlocked side file the database does not use yet (it would delete the only copy)."""
    seeded = seed(ctx, clock)
    real_flock = fcntl.flock
    side_file_seen: list[bool] = []

    def flock_after_another_open(descriptor: int, operation: int) -> None:
        if not side_file_seen:  # the rotation's first lock: its key file exists, still unlocked
            side_file_seen.append(side_key_file(config.key_file).exists())
            open_context(config, clock).close()
        real_flock(descriptor, operation)

    monkeypatch.setattr(fcntl, "flock", flock_after_another_open)
    result = key_rotation.rotate(ctx, config, Actor.cli())
    monkeypatch.undo()

    assert side_file_seen == [False]
    assert not side_key_file(config.key_file).exists()
    reopened = open_context(config, clock)
    try:
        assert reopened.box.key_id == result.new_key_id != result.old_key_id
        assert rotate_events(reopened) == 1
        assert_everything_works(reopened, clock, seeded)
    finally:
        reopened.close()


@pytest.mark.parametrize("outcome", ["committed", "rolled-back", "unreadable"])
def test_a_transaction_error_keeps_the_key_the_database_ended_up_with(
    ctx: Context, config: Config, clock: FixedClock, monkeypatch: pytest.MonkeyPatch, outcome: str
) -> None:
    """The connection drops at COMMIT: the commit may or may not have happened. The rotation
    looks; a database on the new key is a finished rotation, one on the old key a rolled-back one,
    and one it cannot read leaves the side file for the next open, which decides the same way."""
    seeded = seed(ctx, clock)
    old_key_id = ctx.box.key_id
    committed = outcome != "rolled-back"
    real_write = ctx.db.write
    dropped = StorageError("The database server closed the connection unexpectedly.")

    @contextmanager
    def write_losing_the_answer() -> Iterator[Session]:
        with real_write() as session:
            yield session
            if not committed:
                raise dropped
        raise dropped

    @contextmanager
    def read_failing() -> Iterator[Session]:
        raise dropped
        yield  # a generator, for contextmanager

    monkeypatch.setattr(ctx.db, "write", write_losing_the_answer)
    if outcome == "unreadable":
        monkeypatch.setattr(ctx.db, "read", read_failing)
    if outcome == "committed":
        assert key_rotation.rotate(ctx, config, Actor.cli()).new_key_id != old_key_id
    else:
        with pytest.raises(StorageError, match="closed the connection"):
            key_rotation.rotate(ctx, config, Actor.cli())
    monkeypatch.undo()
    assert side_key_file(config.key_file).exists() == (outcome == "unreadable")

    reopened = open_context(config, clock)  # completes the rotation left undecided
    try:
        assert not side_key_file(config.key_file).exists()
        assert reopened.box.key_id == key_id_of(read_key_file(config.key_file))
        assert (reopened.box.key_id != old_key_id) == committed
        assert rotate_events(reopened) == int(committed)
        assert_everything_works(reopened, clock, seeded)
    finally:
        reopened.close()


def audit_actions(ctx: Context) -> list[str]:
    with ctx.db.read() as session:
        return [event.action for event in list_events(session)]


def test_a_process_started_before_a_rotation_is_refused_when_it_seals_a_secret(
    ctx: Context, config: Config, clock: FixedClock
) -> None:
    """A console left running holds the old key: what it sealed now nothing could ever open."""
    actor = Actor.cli()
    SettingsStore(ctx).set_many(actor, {"smtp.host": "mail.example.com"})
    UserService(ctx).create(actor, "alice")
    stale = open_context(config, clock)
    try:
        key_rotation.rotate(ctx, config, actor)
        before = audit_actions(ctx)
        for seal in (
            lambda: SettingsStore(stale).set_many(
                actor, {"smtp.host": "other.example.com", "smtp.password": SMTP_PASSWORD}
            ),
            lambda: MfaService(stale).begin_enrollment(actor, "alice", "totp"),
        ):
            with pytest.raises(StorageError) as refused:
                seal()
            assert str(refused.value) == KEY_ROTATED
    finally:
        stale.close()
    settings = SettingsStore(ctx).load()
    assert (settings["smtp.host"], settings["smtp.password"]) == ("mail.example.com", "")
    with ctx.db.read() as session:
        assert session.exec(select(MfaCredential)).all() == []
    assert audit_actions(ctx) == before


def test_a_rotation_waits_for_a_secret_being_sealed_and_reseals_it(
    ctx: Context, config: Config, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A console saving a secret when the rotation starts: the rotation waits for its
    transaction, then re-seals what it wrote (on PostgreSQL the key check row lock does it)."""
    actor = Actor.cli()
    sealing, release = threading.Event(), threading.Event()
    real_save = SettingsStore._save

    def save_slowly(store: SettingsStore, *args: object) -> None:
        real_save(store, *args)  # type: ignore[arg-type]
        sealing.set()
        assert release.wait(30)

    monkeypatch.setattr(SettingsStore, "_save", save_slowly)
    saver = threading.Thread(
        target=lambda: SettingsStore(ctx).set_many(actor, {"smtp.password": SMTP_PASSWORD})
    )
    saver.start()
    assert sealing.wait(30)
    rotating = open_context(config, clock)
    try:
        rotation = threading.Thread(target=key_rotation.rotate, args=(rotating, config, actor))
        rotation.start()
        rotation.join(1.0)
        assert rotation.is_alive(), "the rotation did not wait for the transaction sealing"
        release.set()
        saver.join(30)
        rotation.join(30)
        assert rotating.box.key_id != ctx.box.key_id
        assert SettingsStore(rotating).load()["smtp.password"] == SMTP_PASSWORD
    finally:
        release.set()
        rotating.close()


def test_a_second_rotation_or_a_removed_side_file_changes_nothing(
    ctx: Context, config: Config, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = seed(ctx, clock)
    old_key_id = ctx.box.key_id
    pending = side_key_file(config.key_file)
    write_key_file(pending, new_key())  # another rotation's side file: never replaced
    with pytest.raises(StorageError, match="Another key rotation is running"):
        key_rotation.rotate(ctx, config, Actor.cli())
    pending.unlink()

    # Someone deletes the side file mid-rotation: the database must not switch to a lost key.
    monkeypatch.setattr(key_rotation, "_checkpoint", lambda step: pending.unlink())
    with pytest.raises(StorageError, match="was removed or replaced during the rotation"):
        key_rotation.rotate(ctx, config, Actor.cli())
    monkeypatch.undo()
    assert ctx.box.key_id == old_key_id == key_id_of(read_key_file(config.key_file))
    assert rotate_events(ctx) == 0
    assert not pending.exists()
    assert [p.name for p in config.key_file.parent.iterdir() if "secret.key" in p.name] == [
        "secret.key"
    ]
    assert_everything_works(ctx, clock, seeded)
