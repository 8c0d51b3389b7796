"""make_engine and Config: SQLite pragmas, BEGIN IMMEDIATE for writes, where the database lives."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import platformdirs
import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from mfa_tui.core.config import Config
from mfa_tui.core.context import Context
from mfa_tui.core.db import SAME_MOMENT, SQLITE_BUSY_TIMEOUT_MS, Database, make_engine
from mfa_tui.core.errors import ConflictError, StorageError


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[tuple[Database, Path]]:
    path = tmp_path / "engine.db"
    database = Database(make_engine(f"sqlite:///{path}"))
    with database.write() as session:
        session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        session.execute(text("INSERT INTO t (v) VALUES ('seed')"))
    yield database, path
    database.dispose()


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(
    sqlite_db: tuple[Database, Path],
) -> None:
    database, path = sqlite_db
    with database.engine.connect() as connection:
        journal = connection.exec_driver_sql("PRAGMA journal_mode").scalar_one()
        foreign_keys = connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one()
        busy = connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
    assert journal == "wal"
    assert foreign_keys == 1
    assert busy == SQLITE_BUSY_TIMEOUT_MS >= 1000
    # WAL is a property of the file: a plain sqlite3 connection sees it too.
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()


def test_foreign_keys_are_enforced(sqlite_db: tuple[Database, Path]) -> None:
    database, _ = sqlite_db
    with database.write() as session:
        session.execute(
            text("CREATE TABLE child (id INTEGER PRIMARY KEY, t_id INTEGER REFERENCES t(id))")
        )
    with pytest.raises(ConflictError) as refused, database.write() as session:
        session.execute(text("INSERT INTO child (t_id) VALUES (999)"))
    # One sentence for a person; the database's own words stay on the cause.
    assert str(refused.value) == SAME_MOMENT
    assert isinstance(refused.value.__cause__, IntegrityError)
    assert "FOREIGN KEY" in str(refused.value.__cause__)


def _other_connection_can_begin_immediate(path: Path) -> str | None:
    """Try to take the write lock from a separate connection with a short timeout: None or the error."""
    other = sqlite3.connect(path, timeout=0.05, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return None
    except sqlite3.OperationalError as error:
        return str(error)
    finally:
        other.close()


def _select_in_a_thread(
    block: Callable[[], AbstractContextManager[Session]],
    entered: threading.Event,
    release: threading.Event,
) -> threading.Thread:
    """Open ``block()`` in a thread, run one SELECT in it, and keep it open until ``release``."""

    def run() -> None:
        with block() as session:
            assert session.execute(text("SELECT v FROM t")).scalar_one() == "seed"
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=run)
    thread.start()
    assert entered.wait(10), "the block never started"
    return thread


def test_write_takes_the_write_lock_at_begin(sqlite_db: tuple[Database, Path]) -> None:
    """write() starts with BEGIN IMMEDIATE: after a mere SELECT it already holds the write lock.

    A deferred BEGIN followed by a SELECT holds no write lock (in WAL mode readers never block a
    writer), so the other connection's BEGIN IMMEDIATE would succeed.
    """
    database, path = sqlite_db
    entered, release = threading.Event(), threading.Event()
    thread = _select_in_a_thread(database.write, entered, release)
    try:
        problem = _other_connection_can_begin_immediate(path)
    finally:
        release.set()
        thread.join(10)
    assert problem is not None and "database is locked" in problem
    assert _other_connection_can_begin_immediate(path) is None


def test_read_does_not_take_the_write_lock(sqlite_db: tuple[Database, Path]) -> None:
    database, path = sqlite_db
    entered, release = threading.Event(), threading.Event()
    thread = _select_in_a_thread(database.read, entered, release)
    try:
        problem = _other_connection_can_begin_immediate(path)
    finally:
        release.set()
        thread.join(10)
    assert problem is None


def test_write_rolls_back_when_the_block_raises(sqlite_db: tuple[Database, Path]) -> None:
    database, _ = sqlite_db
    with pytest.raises(RuntimeError), database.write() as session:
        session.execute(text("INSERT INTO t (v) VALUES ('lost')"))
        raise RuntimeError("boom")
    with database.read() as session:
        assert session.execute(text("SELECT v FROM t ORDER BY id")).scalars().all() == ["seed"]


def test_default_database_lives_in_the_user_data_dir() -> None:
    config = Config.resolve(environ={})

    data_dir = platformdirs.user_data_path("mfa-tui")
    assert config.database_url == f"sqlite:///{data_dir / 'mfa-tui.db'}"
    assert config.key_file == data_dir / "secret.key"
    assert config.secret_key_text is None
    assert make_engine(config.database_url).dialect.name == "sqlite"


def test_config_honours_the_environment(tmp_path: Path) -> None:
    environ = {
        "MFA_TUI_DATABASE_URL": "postgresql://alice@db.example/mfa",
        "MFA_TUI_KEY_FILE": str(tmp_path / "k.key"),
        "MFA_TUI_SECRET_KEY": "c2VjcmV0",
    }

    config = Config.resolve(environ=environ)

    assert config.database_url == "postgresql://alice@db.example/mfa"
    assert config.key_file == tmp_path / "k.key"
    assert config.secret_key_text == "c2VjcmV0"


def test_flags_win_over_the_environment(tmp_path: Path) -> None:
    environ = {"MFA_TUI_DATABASE_URL": "sqlite:///env.db", "MFA_TUI_KEY_FILE": "/env/k"}

    config = Config.resolve("sqlite:///flag.db", tmp_path / "flag.key", environ=environ)

    assert config.database_url == "sqlite:///flag.db"
    assert config.key_file == tmp_path / "flag.key"


def test_key_file_path_expands_the_home_directory() -> None:
    config = Config.resolve(environ={"MFA_TUI_KEY_FILE": "~/mfa.key"})
    assert config.key_file == Path.home() / "mfa.key"


@pytest.mark.parametrize("url", ["not a url", "://nothing", ""])
def test_a_bad_url_is_a_storage_error(url: str) -> None:
    with pytest.raises(StorageError) as refused:
        make_engine(url)
    assert "database URL" in str(refused.value)


def test_an_unknown_dialect_is_a_storage_error() -> None:
    with pytest.raises(StorageError):
        make_engine("nosuchdb://host/db")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://alice@localhost/mfa",
        "postgresql+psycopg2://alice@localhost/mfa",
        "postgresql+psycopg://alice@localhost/mfa",
    ],
)
def test_postgresql_urls_get_the_psycopg_driver(url: str) -> None:
    engine = make_engine(url)  # no connection is made until first use
    try:
        assert engine.dialect.name == "postgresql"
        assert engine.dialect.driver == "psycopg"
        assert engine.url.database == "mfa"
    finally:
        engine.dispose()


def test_a_sqlite_file_in_a_missing_folder_gets_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "mfa.db"
    database = Database(make_engine(f"sqlite:///{path}"))
    try:
        with database.write() as session:
            session.execute(text("CREATE TABLE x (id INTEGER)"))
    finally:
        database.dispose()
    assert path.exists()


def test_postgresql_transactions_are_read_committed_whatever_the_server_default() -> None:
    """The audit head lock, optimistic versions and key rotation are built for READ COMMITTED; a
    server (or role) configured for REPEATABLE READ must not change what mfa-tui gets."""
    from tests.conftest import postgres_base_url

    stricter = "default_transaction_isolation=repeatable\\ read"
    url = make_url(postgres_base_url()).update_query_dict({"options": f"-c {stricter}"})
    plain = create_engine(url)
    try:
        with plain.connect() as connection:  # the server default this URL sets is really there
            shown = connection.execute(text("SHOW transaction_isolation")).scalar()
            assert shown == "repeatable read"
    finally:
        plain.dispose()
    database = Database(make_engine(url.render_as_string(hide_password=False)))
    try:
        for session_of in (database.read, database.write):
            with session_of() as session:
                shown = session.execute(text("SHOW transaction_isolation")).scalar()
                assert shown == "read committed", session_of.__name__
    finally:
        database.dispose()


def test_a_database_file_moved_or_replaced_while_open_is_said_not_written_into_the_void(
    tmp_path: Path,
) -> None:
    """SQLite keeps writing to a file that was deleted or moved away (every change lost when the
    process ends) and would create an empty one at the path for a new connection. mfa-tui checks,
    per transaction, that the path still names the file it opened."""
    from mfa_tui.core.access import Actor
    from mfa_tui.core.context import open_context
    from mfa_tui.core.services.users import UserService

    path = tmp_path / "mfa.db"
    ctx = open_context(Config(f"sqlite:///{path}", tmp_path / "secret.key"))
    users = UserService(ctx)
    try:
        users.create(Actor.cli(), "alice")
        moved = tmp_path / "moved.db"
        path.rename(moved)  # mv mfa.db elsewhere, as a careless clean-up would
        for call in (lambda: users.create(Actor.cli(), "bob"), lambda: users.get("alice")):
            with pytest.raises(StorageError) as refused:
                call()
            assert str(refused.value) == (
                f"The database file {path} was deleted or moved while in use; put it back, or "
                "restart mfa-tui to start a new one: nothing is read or saved until then."
            )
        ctx.db.engine.dispose()  # even a new connection does not leave an empty file there
        with pytest.raises(StorageError, match="deleted or moved"):
            users.get("alice")
        assert not path.exists()

        moved.rename(path)  # put back: the same file, so the same session goes on
        users.create(Actor.cli(), "bob")
        assert [view.username for view in users.list()] == ["alice", "bob"]

        copy = tmp_path / "copy.db"
        copy.write_bytes(path.read_bytes())
        copy.replace(path)  # another file now has the name (a restore, say)
        with pytest.raises(StorageError, match=r"was replaced while in use; restart mfa-tui"):
            users.create(Actor.cli(), "carol")
    finally:
        ctx.close()
    reopened = open_context(Config(f"sqlite:///{path}", tmp_path / "secret.key"))
    try:
        assert [view.username for view in UserService(reopened).list()] == ["alice", "bob"]
    finally:
        reopened.close()


def test_two_writers_clashing_is_a_conflict_and_a_broken_rule_is_not(ctx: Context) -> None:
    """A unique or foreign-key violation means another writer got there first (try again); any
    other integrity error is a bug, said as the database's problem rather than blamed on others."""
    with ctx.db.write() as session:
        session.execute(text("CREATE TABLE clash_probe (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"))
        session.execute(text("INSERT INTO clash_probe VALUES (1, 'first')"))
    with pytest.raises(ConflictError) as clash, ctx.db.write() as session:
        session.execute(text("INSERT INTO clash_probe VALUES (1, 'second')"))
    assert str(clash.value) == SAME_MOMENT
    with pytest.raises(StorageError) as broken, ctx.db.write() as session:
        session.execute(text("INSERT INTO clash_probe VALUES (2, NULL)"))
    message = str(broken.value)
    assert message.startswith("The database reported a problem: ") and "\n" not in message
    assert "null" in message.lower()
