"""``--help`` everywhere: exit 0, and each command lists the options SPEC §5 gives it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from mfa_tui.cli import app
from tests.cli.conftest import Cli

# SPEC §5, command by command.
SPEC_OPTIONS: dict[tuple[str, ...], tuple[str, ...]] = {
    (): ("--db", "--key-file", "--debug"),
    ("init",): ("--admin", "--password-stdin"),
    ("demo",): ("--users",),
    ("users", "list"): ("--json", "--search", "--limit"),
    ("users", "add"): ("--email", "--phone", "--display-name", "--role", "--password-stdin"),
    ("users", "set-password"): ("--password-stdin",),
    ("users", "import"): ("--skip-invalid",),
    ("users", "set-mfa"): ("--type", "--configure-later"),
    ("users", "reset-mfa"): (),
    ("users", "unlock"): (),
    ("users", "verify-caller"): (),
    ("users", "tap"): ("create", "revoke"),
    ("users", "invite"): (),
    ("settings", "show"): ("--json",),
    ("settings", "set"): ("--value-stdin",),
    ("audit", "list"): ("--json", "--verify", "--csv"),
    ("verify",): ("--send", "--require"),
    ("login",): (),
    ("serve",): ("--host", "--port", "--public-url"),
    ("db", "upgrade"): (),
    ("keys", "rotate"): (),
}


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


ROOT = typer.main.get_command(app)
IMPLEMENTED = set(_commands(ROOT))


def _help(cli: Cli, path: tuple[str, ...]) -> str:
    result = cli.raw([*path, "--help"])
    assert result.code == 0, result
    assert result.err == ""
    assert result.out.startswith(f"Usage: mfa-tui {' '.join(path)}".rstrip())
    return result.out


@pytest.mark.parametrize("path", sorted(IMPLEMENTED), ids=lambda p: " ".join(p) or "mfa-tui")
def test_every_command_has_help(sqlite_cli: Cli, path: tuple[str, ...]) -> None:
    text = _help(sqlite_cli, path)
    assert "--help" in text
    # Help needs no database and makes no key.
    assert not sqlite_cli.key_file.exists()
    assert not Path(sqlite_cli.db_url.removeprefix("sqlite:///")).exists()


@pytest.mark.parametrize("path", list(SPEC_OPTIONS), ids=lambda p: " ".join(p) or "mfa-tui")
def test_help_lists_the_options_of_the_spec(sqlite_cli: Cli, path: tuple[str, ...]) -> None:
    if path not in IMPLEMENTED:
        pytest.skip(f"'mfa-tui {' '.join(path)}' (SPEC §5) is not in the CLI yet")
    text = _help(sqlite_cli, path)
    for option in SPEC_OPTIONS[path]:
        assert option in text, f"{option} missing from 'mfa-tui {' '.join(path)} --help'"


def test_top_level_help_names_the_command_groups(sqlite_cli: Cli) -> None:
    text = _help(sqlite_cli, ())
    for group in ("init", "demo", "users", "settings", "audit", "verify", "db"):
        assert f"  {group} " in text
