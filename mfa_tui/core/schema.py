"""The schema version: upgrade an older database on start, refuse a newer one clearly.

Migrations live in the package (``mfa_tui/migrations``) so an installed wheel can upgrade too.
"""

from __future__ import annotations

from functools import cache

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from mfa_tui.core.db import Database, table_names
from mfa_tui.core.errors import StorageError

SCRIPT_LOCATION = "mfa_tui:migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


@cache
def _scripts() -> ScriptDirectory:
    # Read once per process: the shipped migrations do not change while it runs, and reading
    # them compiles every migration file (most of the cost of opening a database).
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None, "the package ships at least one migration"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(database: Database) -> None:
    """Bring the schema to the newest revision this version knows (idempotent)."""
    current = current_revision(database.engine)
    known = {script.revision for script in _scripts().walk_revisions()}
    if current is not None and current not in known:
        raise StorageError(
            f"This database has schema {current}, newer than this mfa-tui understands; "
            "upgrade mfa-tui before using it."
        )
    if current is None and table_names(database.engine) - {"alembic_version"}:
        raise StorageError(
            "This database already holds tables that are not mfa-tui's; point --db at an empty "
            "or an mfa-tui database."
        )
    if current == head_revision():
        return
    config = alembic_config()
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
