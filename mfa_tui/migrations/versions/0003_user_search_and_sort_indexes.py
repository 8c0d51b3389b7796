"""user search index and sort indexes

Substring search over username, display name and email is served by an index: SQLite FTS5 with
the trigram tokenizer (an external-content table kept in step with ``users`` by triggers), and on
PostgreSQL a pg_trgm GIN index on the same three columns. These objects are not in the models;
``mfa_tui.core.search.SEARCH_INDEX_OBJECTS`` names them for the schema comparison test.

Note for later migrations: a SQLite batch ALTER of ``users`` recreates the table and drops these
triggers; recreate them (``_create_sqlite_search``) after such a batch.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SORT_COLUMNS = ("display_name", "email", "role", "mfa_type", "mfa_status")
PG_SEARCH_EXPRESSION = (
    "(lower(username) || chr(1) || lower(coalesce(display_name, '')) || chr(1) || "
    "lower(coalesce(email, '')))"
)


def upgrade() -> None:
    for column in SORT_COLUMNS:
        op.create_index(f"ix_users_sort_{column}", "users", [column, "username_key"])
    if op.get_bind().dialect.name == "postgresql":
        _create_postgresql_search()
    else:
        _create_sqlite_search()


def _create_postgresql_search() -> None:
    """A trigram index, if pg_trgm can be had: without it search still works, by scanning."""
    bind = op.get_bind()
    schema = bind.exec_driver_sql(
        "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'"
    ).scalar()
    if schema is None:
        try:
            with bind.begin_nested():
                bind.exec_driver_sql("CREATE EXTENSION pg_trgm WITH SCHEMA public")
            schema = "public"
        except Exception as error:  # e.g. no right to create extensions: search scans instead
            print(
                f"mfa-tui: pg_trgm is not available ({error.__class__.__name__}); user search will scan."
            )
            return
    op.execute(
        f"CREATE INDEX ix_users_search_trgm ON users USING gin "
        f"({PG_SEARCH_EXPRESSION} {schema}.gin_trgm_ops)"
    )


def _create_sqlite_search() -> None:
    op.execute(
        "CREATE VIRTUAL TABLE users_search USING fts5(username, display_name, email, "
        "content='users', content_rowid='id', tokenize='trigram')"
    )
    op.execute(
        "CREATE TRIGGER users_search_insert AFTER INSERT ON users BEGIN "
        "INSERT INTO users_search(rowid, username, display_name, email) "
        "VALUES (new.id, new.username, new.display_name, new.email); END"
    )
    op.execute(
        "CREATE TRIGGER users_search_delete AFTER DELETE ON users BEGIN "
        "INSERT INTO users_search(users_search, rowid, username, display_name, email) "
        "VALUES ('delete', old.id, old.username, old.display_name, old.email); END"
    )
    op.execute(
        "CREATE TRIGGER users_search_update AFTER UPDATE OF username, display_name, email ON users "
        "BEGIN "
        "INSERT INTO users_search(users_search, rowid, username, display_name, email) "
        "VALUES ('delete', old.id, old.username, old.display_name, old.email); "
        "INSERT INTO users_search(rowid, username, display_name, email) "
        "VALUES (new.id, new.username, new.display_name, new.email); END"
    )
    op.execute("INSERT INTO users_search(users_search) VALUES ('rebuild')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_users_search_trgm")
    else:
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS users_search_{trigger}")
        op.execute("DROP TABLE IF EXISTS users_search")
    for column in SORT_COLUMNS:
        op.drop_index(f"ix_users_sort_{column}", "users")
