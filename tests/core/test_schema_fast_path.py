"""Opening an up-to-date database needs no Alembic: its import is most of a ``verify`` process.

The head revision read from the migration files must be Alembic's own; an older database still
goes through Alembic and is upgraded (tests/core/test_migrations.py covers what the upgrade builds).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from mfa_tui.core import schema
from mfa_tui.core.config import Config
from mfa_tui.core.context import open_context
from mfa_tui.core.db import Database, make_engine

OPEN_AND_LIST_MODULES = """
import sys
from pathlib import Path
from mfa_tui.core.config import Config
from mfa_tui.core.context import open_context
open_context(Config({url!r}, Path({key!r}))).close()
print(" ".join(sorted(sys.modules)))
"""


def test_the_head_read_from_the_files_is_alembics() -> None:
    assert schema.shipped_head() == schema.head_revision()


def test_an_up_to_date_database_opens_without_importing_alembic(tmp_path: Path) -> None:
    url, key = f"sqlite:///{tmp_path / 'mfa.db'}", str(tmp_path / "secret.key")
    open_context(Config(url, Path(key))).close()  # creates and migrates it

    loaded = subprocess.run(
        [sys.executable, "-c", OPEN_AND_LIST_MODULES.format(url=url, key=key)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()

    assert "sqlalchemy" in loaded
    assert not [name for name in loaded if name == "alembic" or name.startswith("alembic.")]


def test_an_older_database_is_still_upgraded(db_url: str) -> None:
    from alembic import command

    database = Database(make_engine(db_url))
    try:
        config = schema.alembic_config()
        with database.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0002")
        assert schema.current_revision(database.engine) == "0002"

        schema.upgrade(database)

        assert schema.current_revision(database.engine) == schema.shipped_head()
        with database.engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM users")).scalar() == 0
    finally:
        database.dispose()
