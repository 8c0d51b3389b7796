"""Engines, sessions and the schema version.

``make_engine(url)`` is the only place an engine is built, so tests inject their own. SQLite gets
WAL, foreign keys, a busy timeout and ``BEGIN IMMEDIATE`` for write transactions (a deferred
transaction that later upgrades to a write fails under concurrency whatever the timeout).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    IntegrityError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session

from mfa_tui.core.errors import ConflictError, MfaTuiError, StorageError

SQLITE_BUSY_TIMEOUT_MS = 10_000
# A PostgreSQL server that drops packets would otherwise hold a caller for the system's TCP
# connect timeout (about two minutes); a URL's own ?connect_timeout= or libpq's PGCONNECT_TIMEOUT
# wins.
POSTGRES_CONNECT_TIMEOUT_SECONDS = 10
_WRITE = "mfa_tui_write"


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise StorageError(
            f"'{url}' is not a database URL; use e.g. sqlite:///path/to/mfa.db "
            "or postgresql+psycopg://user@host/db."
        ) from error
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database)
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() != "psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    options: dict[str, object] = {}
    if parsed.get_backend_name() == "postgresql":
        if "connect_timeout" not in parsed.query and "PGCONNECT_TIMEOUT" not in os.environ:
            options["connect_args"] = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS}
        # The locks that keep the audit chain, versions and key rotation right are taken on
        # rows as they are now (READ COMMITTED): a server whose default_transaction_isolation
        # is stricter would refuse concurrent writers or hide a row a rotation must re-seal.
        options["isolation_level"] = "READ COMMITTED"
    try:
        return create_engine(parsed, pool_pre_ping=True, **options)
    except (ImportError, SQLAlchemyError) as error:
        raise StorageError(f"Cannot use the database URL '{url}': {error}.") from error


def _sqlite_engine(url: str, database: str | None) -> Engine:
    in_a_file = database and database != ":memory:" and not database.startswith("file:")
    if in_a_file:
        directory = Path(database).expanduser().parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StorageError(
                f"Cannot create the folder {directory}: {error.strerror}."
            ) from error
    engine = create_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    )
    opened = _OpenedFile(Path(os.path.abspath(database)) if in_a_file else None)

    @event.listens_for(engine, "do_connect")
    def _before_connect(*_args: object) -> None:
        # Before SQLite would quietly create a new, empty file where the database was.
        opened.require_same()

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        opened.remember()
        # Let SQLAlchemy's "begin" event below issue BEGIN, instead of pysqlite's own handling.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        opened.require_same()
        write = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


class _OpenedFile:
    """The SQLite file as first opened. Deleted or replaced under a running mfa-tui, SQLite would
    go on reading and writing the old, unlinked file (every change lost when the process ends)
    or start a new empty one; instead every transaction checks that the path still names the
    file it opened, and says so when it does not."""

    def __init__(self, path: Path | None) -> None:
        self.path = path  # None: not in a file (":memory:", a file: URI)
        self.identity: tuple[int, int] | None = None

    def remember(self) -> None:
        if self.path is not None and self.identity is None:
            self.identity = self._identity()

    def require_same(self) -> None:
        if self.path is None or self.identity is None:
            return
        try:
            now = self._identity()
        except FileNotFoundError:
            raise StorageError(
                f"The database file {self.path} was deleted or moved while in use; put it back, "
                "or restart mfa-tui to start a new one: nothing is read or saved until then."
            ) from None
        if now != self.identity:
            raise StorageError(
                f"The database file {self.path} was replaced while in use; restart mfa-tui "
                "to open the new one: nothing is read or saved until then."
            )

    def _identity(self) -> tuple[int, int]:
        assert self.path is not None
        status = os.stat(self.path)
        return status.st_dev, status.st_ino


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


class Database:
    """Hands out short sessions: ``read()`` for queries, ``write()`` for one atomic change."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._write_engine = engine.execution_options(**{_WRITE: True})

    @contextmanager
    def read(self) -> Iterator[Session]:
        with _storage_errors(), Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with (
            _storage_errors(),
            Session(self._write_engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


SAME_MOMENT = (
    "Someone else changed the same records at the same moment, so nothing was saved; try again."
)
# A unique or foreign-key violation, the clash of two writers: psycopg's SQLSTATE, SQLite's words.
_CLASH_SQLSTATES = ("23505", "23503")
_CLASH_MESSAGES = ("UNIQUE constraint failed", "FOREIGN KEY constraint failed")


@contextmanager
def _storage_errors() -> Iterator[None]:
    try:
        yield
    except SQLAlchemyError as error:
        raise database_error(error) from error


def database_error(error: SQLAlchemyError) -> MfaTuiError:
    """The one sentence a person sees for an error from the database layer, as an MfaTuiError:
    a clash with a concurrent change is a conflict, anything else the database's problem."""
    if isinstance(error, OperationalError):
        return StorageError(describe_operational_error(error))
    if isinstance(error, IntegrityError) and _is_clash(error):
        return ConflictError(SAME_MOMENT)
    if isinstance(error, PoolTimeout):
        return StorageError("Every connection to the database is busy; try again in a moment.")
    detail = str(getattr(error, "orig", None) or error).strip().splitlines()
    message = detail[0] if detail else type(error).__name__
    if "file is not a database" in message or "malformed" in message:
        return StorageError(
            f"The database file is damaged or is not a database ({message}); "
            "restore it from a backup."
        )
    return StorageError(f"The database reported a problem: {message}.")


def _is_clash(error: IntegrityError) -> bool:
    """A unique or foreign-key violation (another writer got there first), not a broken rule
    such as NOT NULL, which is a bug to report as the database's problem."""
    if getattr(error.orig, "sqlstate", None) in _CLASH_SQLSTATES:
        return True
    return any(words in str(error.orig) for words in _CLASH_MESSAGES)


def describe_operational_error(error: OperationalError) -> str:
    message = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
    lowered = message.lower()
    if "database is locked" in lowered:
        return "The database is busy (locked by another process); try again in a moment."
    if "readonly" in lowered or "read-only" in lowered:
        return "The database is read-only; check the file's permissions."
    if "disk" in lowered and "full" in lowered:
        return "The disk holding the database is full; free some space and try again."
    if (
        "disk i/o error" in lowered
    ):  # SQLite's word for a failed write, e.g. its -shm on a full disk
        return (
            "The database could not be written (disk I/O error): check that its disk is "
            "not full or failing, then try again."
        )
    if "unable to open" in lowered:
        return "Cannot open the database file; check that its folder exists and is writable."
    if "connection" in lowered or "could not connect" in lowered or "server" in lowered:
        return f"Cannot reach the database server: {message}."
    return f"The database reported a problem: {message}."


def table_names(engine: Engine) -> set[str]:
    try:
        return set(inspect(engine).get_table_names())
    except SQLAlchemyError as error:
        raise database_error(error) from error
