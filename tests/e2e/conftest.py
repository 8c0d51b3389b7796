"""Fixtures of the browser tests: a prepared database and ``mfa-tui serve`` on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.browser import Prepared, ServedConsole, prepare_database


@pytest.fixture
def database(tmp_path: Path) -> Prepared:
    """The demo users and an administrator with an Authenticator, on a new SQLite file."""
    return prepare_database(tmp_path)


@pytest.fixture
def served(database: Prepared, tmp_path: Path) -> Iterator[ServedConsole]:
    """``mfa-tui serve`` on ``database``, stopped at the end (a test module may override it)."""
    server = ServedConsole(database, tmp_path / "serve.log")
    try:
        yield server
    finally:
        server.stop()
