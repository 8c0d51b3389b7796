"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL comes from MFA_TUI_TEST_POSTGRES_URL (``.ci/run`` sets it); without it the suite tries
the local server at 127.0.0.1:5432 and skips the PostgreSQL cases, with the reason, if none answers.
When the variable *is* set, an unreachable server fails the tests instead of skipping them.
Each PostgreSQL test gets its own schema, dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, text

from mfa_tui.core.access import Actor
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.config import Config
from mfa_tui.core.context import Context, open_context

if TYPE_CHECKING:
    from tests.helpers.smtp_server import SmtpServer

os.environ.setdefault("TEXTUAL_ANIMATION", "none")
POSTGRES_ENV = "MFA_TUI_TEST_POSTGRES_URL"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
_postgres_problem: str | bool | None = False  # False: not probed yet


def postgres_base_url() -> str:
    """The server URL, or skip (or fail, when the variable demands it) with the reason."""
    global _postgres_problem
    url = os.environ.get(POSTGRES_ENV) or DEFAULT_POSTGRES
    if _postgres_problem is False:
        try:
            engine = create_engine(url, connect_args={"connect_timeout": 3})
            with engine.connect() as connection:
                connection.execute(text("select 1"))
            engine.dispose()
            _postgres_problem = None
        except Exception as error:
            _postgres_problem = f"no PostgreSQL at {url}: {str(error).splitlines()[0]}"
    if _postgres_problem:
        if os.environ.get(POSTGRES_ENV):
            pytest.fail(f"{POSTGRES_ENV} is set but {_postgres_problem}")
        pytest.skip(_postgres_problem)
    return url


def _with_search_path(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database, once for SQLite and once for PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mfa.db'}"
        return
    base = postgres_base_url()
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield _with_search_path(base, schema)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mfa.db'}"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC))


@pytest.fixture
def config(db_url: str, tmp_path: Path) -> Config:
    return Config(database_url=db_url, key_file=tmp_path / "secret.key")


@pytest.fixture
def ctx(config: Config, clock: FixedClock) -> Iterator[Context]:
    context = open_context(config, clock)
    yield context
    context.close()


@pytest.fixture
def cli_actor() -> Actor:
    return Actor.cli()


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port that refuses every connection for the whole test ("the server is down")."""
    from tests.helpers.ports import refusing_port

    with refusing_port() as port:
        yield port


@pytest.fixture
def silent_tcp() -> Iterator[int]:
    """A loopback port whose connections the kernel accepts and nobody ever answers."""
    from tests.helpers.ports import silent_port

    with silent_port() as port:
        yield port


@pytest.fixture
def refused_udp_port() -> Iterator[int]:
    """A loopback UDP port that answers "port unreachable" for the whole test."""
    from tests.helpers.ports import refusing_udp_port

    with refusing_udp_port() as port:
        yield port


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on a free loopback port; its received mail is in ``messages``."""
    from tests.helpers.smtp_server import smtp_server

    with smtp_server() as server:
        yield server
