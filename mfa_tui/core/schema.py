"""The schema version: upgrade an older database on start, refuse a newer one clearly.

Migrations live in the package (``mfa_tui/migrations``) so an installed wheel can upgrade too.

Opening a database that is already at the newest schema (every start but the first after an
upgrade) needs no Alembic at all: the stamp is read with a plain query and compared with the head
revision read from the shipped migration files. Alembic, its Mako templates and every dialect's
DDL module (it imports them all) cost more than the rest of a ``verify`` process, so they are
imported only when there is something to upgrade or to refuse.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

from mfa_tui.core.db import Database, table_names
from mfa_tui.core.errors import StorageError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

SCRIPT_LOCATION = "mfa_tui:migrations"
VERSIONS_DIR = Path(__file__).resolve().parent.parent / "migrations" / "versions"
VERSION_TABLE = "alembic_version"
_REVISION_LINE = re.compile(r'^(down_revision|revision)\b[^=]*=\s*["\']?([^"\'\s]*)', re.M)


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


@cache
def _scripts() -> ScriptDirectory:
    # Read once per process: the shipped migrations do not change while it runs, and reading
    # them compiles every migration file.
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None, "the package ships at least one migration"
    return head


@cache
def shipped_head() -> str | None:
    """The head revision, read from the migration files without importing them (or Alembic).

    None when the files do not name exactly one head (then Alembic decides)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in VERSIONS_DIR.glob("*.py"):
        fields = dict(_REVISION_LINE.findall(path.read_text(encoding="utf-8")))
        if fields.get("revision"):
            revisions.add(fields["revision"])
        if fields.get("down_revision") not in (None, "", "None"):
            parents.add(fields["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return _stamp(connection)


def _stamp(connection: Connection) -> str | None:
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    return connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def upgrade(database: Database) -> None:
    """Bring the schema to the newest revision this version knows (idempotent)."""
    current = current_revision(database.engine)
    if current is not None and current == shipped_head():
        return
    known = {script.revision for script in _scripts().walk_revisions()}
    if current is not None and current not in known:
        raise StorageError(
            f"This database has schema {current}, newer than this mfa-tui understands; "
            "upgrade mfa-tui before using it."
        )
    if current is None and table_names(database.engine) - {VERSION_TABLE}:
        raise StorageError(
            "This database already holds tables that are not mfa-tui's; point --db at an empty "
            "or an mfa-tui database."
        )
    if current == head_revision():
        return
    from alembic import command

    config = alembic_config()
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
