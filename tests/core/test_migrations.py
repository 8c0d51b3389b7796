"""The shipped Alembic migrations build exactly the models' schema, and refuse databases they do not know."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel

import mfa_tui.core.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from mfa_tui import cli
from mfa_tui.core import schema
from mfa_tui.core.config import Config
from mfa_tui.core.context import open_context
from mfa_tui.core.db import Database, make_engine, table_names
from mfa_tui.core.errors import StorageError

# Objects the migrations create that the models do not describe: the user search indexes of
# migration 0003 (SQLite FTS5 table and its shadow tables, PostgreSQL pg_trgm index; see
# mfa_tui.core.search.SEARCH_INDEX_OBJECTS). Diffs naming one of these are expected; any other
# difference between migrations and models fails.
SEARCH_INDEX_ALLOWLIST: set[str] = {
    "users_search",
    "users_search_config",
    "users_search_data",
    "users_search_docsize",
    "users_search_idx",
    "ix_users_search_trgm",
}

MODEL_TABLES = set(SQLModel.metadata.tables)


def _object_name(diff: Any) -> str | None:
    """The name of the table, column, index or constraint a compare_metadata diff is about."""
    if isinstance(diff, list):  # modify_* diffs come grouped per column
        return _object_name(diff[0])
    for part in diff[1:]:
        name = getattr(part, "name", None)
        if isinstance(name, str):
            return name
    return None


def _schema_diff(database: Database) -> list[Any]:
    with database.engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    return [diff for diff in diffs if _object_name(diff) not in SEARCH_INDEX_ALLOWLIST]


@pytest.fixture
def database(db_url: str) -> Any:
    db = Database(make_engine(db_url))
    yield db
    db.dispose()


def test_upgrade_of_an_empty_database_builds_exactly_the_models(database: Database) -> None:
    schema.upgrade(database)

    assert schema.current_revision(database.engine) == schema.head_revision()
    assert table_names(database.engine) - SEARCH_INDEX_ALLOWLIST == MODEL_TABLES | {
        "alembic_version"
    }
    assert _schema_diff(database) == []


def test_the_comparison_would_notice_a_missing_index(database: Database) -> None:
    """Guards the test above: a real drift between migration and models shows up as a diff."""
    schema.upgrade(database)
    with database.engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_audit_events_action"))

    diffs = _schema_diff(database)

    assert [(diff[0], _object_name(diff)) for diff in diffs] == [
        ("add_index", "ix_audit_events_action")
    ]


def test_open_context_upgrades_and_seeds_the_audit_head(db_url: str, tmp_path: Path) -> None:
    context = open_context(Config(database_url=db_url, key_file=tmp_path / "secret.key"))
    try:
        assert _schema_diff(context.db) == []
        with context.db.engine.connect() as connection:
            head = connection.execute(text("SELECT id, count FROM audit_head")).all()
        assert [tuple(row) for row in head] == [(1, 0)]
    finally:
        context.close()


def test_upgrade_is_idempotent(database: Database) -> None:
    schema.upgrade(database)
    schema.upgrade(database)
    schema.upgrade(database)

    with database.engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        heads = connection.execute(text("SELECT count(*) FROM audit_head")).scalar_one()
    assert [row[0] for row in versions] == [schema.head_revision()]
    assert heads == 1
    assert _schema_diff(database) == []


def test_a_newer_schema_is_refused_with_advice_to_upgrade(database: Database) -> None:
    schema.upgrade(database)
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))

    with pytest.raises(StorageError) as refused:
        schema.upgrade(database)

    message = str(refused.value)
    assert "9999_future" in message
    assert "newer" in message
    assert "upgrade mfa-tui" in message
    # Nothing was touched: the stamp is still the future one.
    assert schema.current_revision(database.engine) == "9999_future"


def test_a_database_with_foreign_tables_is_refused(database: Database) -> None:
    with database.engine.begin() as connection:
        connection.execute(text("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total INTEGER)"))

    with pytest.raises(StorageError) as refused:
        schema.upgrade(database)

    assert "not mfa-tui's" in str(refused.value)
    assert table_names(database.engine) == {"invoices"}


def test_open_context_refuses_a_foreign_database(db_url: str, tmp_path: Path) -> None:
    database = Database(make_engine(db_url))
    with database.engine.begin() as connection:
        connection.execute(text("CREATE TABLE invoices (id INTEGER PRIMARY KEY)"))
    database.dispose()

    with pytest.raises(StorageError):
        open_context(Config(database_url=db_url, key_file=tmp_path / "secret.key"))
    assert not (tmp_path / "secret.key").exists()


def _run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        cli.main(args)
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def test_cli_db_upgrade(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = str(tmp_path / "secret.key")

    code, out, err = _run_cli(["--db", db_url, "--key-file", key, "db", "upgrade"], capsys)

    assert (code, err) == (0, "")
    assert schema.head_revision() in out
    database = Database(make_engine(db_url))
    try:
        assert schema.current_revision(database.engine) == schema.head_revision()
        assert _schema_diff(database) == []
    finally:
        database.dispose()

    # Again: nothing to do, still fine.
    code, out, err = _run_cli(["--db", db_url, "--key-file", key, "db", "upgrade"], capsys)
    assert (code, err) == (0, "")


def test_cli_db_upgrade_refuses_a_newer_schema_with_exit_3(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = Database(make_engine(db_url))
    schema.upgrade(database)
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    database.dispose()

    code, out, err = _run_cli(
        ["--db", db_url, "--key-file", str(tmp_path / "secret.key"), "db", "upgrade"], capsys
    )

    assert code == 3
    assert out == ""
    assert err.count("\n") == 1
    assert "upgrade mfa-tui" in err
    assert "Traceback" not in err
