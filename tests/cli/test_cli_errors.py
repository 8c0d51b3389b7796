"""Bad input, usage, storage and key problems: the right exit code and one clear line, no traceback."""

from __future__ import annotations

import base64
import os
import secrets
import stat
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from mfa_tui.core.errors import StorageError
from tests.cli.conftest import ADMIN_PASSWORD, Cli, Process, assert_one_error_line

UNREACHABLE_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:1/x"


def write_key(path: Path, key: bytes | None = None, mode: int = 0o600) -> Path:
    path.write_text(base64.b64encode(key or secrets.token_bytes(32)).decode() + "\n")
    path.chmod(mode)
    return path


# Storage and key problems: exit 3 ------------------------------------------------------------------


def test_an_unreachable_database_server(sqlite_cli: Cli) -> None:
    result = sqlite_cli("users", "list", db=UNREACHABLE_POSTGRES)
    assert_one_error_line(result, 3, "Cannot reach the database server")


@pytest.mark.parametrize("url", ["garbage", "nosuchdialect://host/db"])
def test_a_database_url_that_is_not_one(sqlite_cli: Cli, url: str) -> None:
    assert_one_error_line(sqlite_cli("users", "list", db=url), 3, url)


def test_a_database_of_another_application(sqlite_cli: Cli, tmp_path: Path) -> None:
    engine = create_engine(sqlite_cli.db_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE invoices (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    assert_one_error_line(sqlite_cli("users", "list"), 3, "not mfa-tui's")


def test_a_database_from_a_newer_version(sqlite_ready: Cli) -> None:
    engine = create_engine(sqlite_ready.db_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'from_the_future'"))
    engine.dispose()
    assert_one_error_line(sqlite_ready("users", "list"), 3, "newer than this mfa-tui")


def test_the_wrong_key(ready: Cli, tmp_path: Path) -> None:
    other = write_key(tmp_path / "other.key")
    line = assert_one_error_line(ready("users", "list", key_file=other), 3, "does not match")
    assert str(other) in line


def test_a_missing_key_for_an_existing_database(ready: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "secret.key"
    assert_one_error_line(ready("users", "list", key_file=missing), 3, "No secret key")
    assert not missing.exists()  # never silently replaced by a new key


def test_a_key_file_that_others_can_read_or_that_is_not_a_key(
    sqlite_ready: Cli, tmp_path: Path
) -> None:
    sqlite_ready.key_file.chmod(0o644)
    assert_one_error_line(sqlite_ready("users", "list"), 3, "chmod 600")
    sqlite_ready.key_file.chmod(0o600)

    garbage = tmp_path / "garbage.key"
    garbage.write_text("not a key\n")
    garbage.chmod(0o600)
    assert_one_error_line(sqlite_ready("users", "list", key_file=garbage), 3, "not a base64")


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="running as root: file permissions do not stop root from writing",
)
def test_a_read_only_database_file(sqlite_ready: Cli, tmp_path: Path) -> None:
    database = Path(sqlite_ready.db_url.removeprefix("sqlite:///"))
    read_only = [database, *database.parent.glob(database.name + "-*"), database.parent]
    for path in read_only:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        assert_one_error_line(sqlite_ready("users", "add", "bob"), 3)
    finally:
        for path in read_only:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_a_database_opened_read_only(sqlite_ready: Cli) -> None:
    """SQLite's own read-only mode: the same refusal as a read-only file, and works as root too."""
    database = sqlite_ready.db_url.removeprefix("sqlite:///")
    read_only_url = f"sqlite:///file:{database}?mode=ro&uri=true"
    listed = sqlite_ready("users", "list", "--json", db=read_only_url)
    assert listed.code == 0, listed
    assert [row["username"] for row in listed.json] == ["root"]
    assert_one_error_line(sqlite_ready("users", "add", "bob", db=read_only_url), 3, "read-only")
    assert set(sqlite_ready.users()) == {"root"}


def test_debug_lets_the_traceback_through(ready: Cli, tmp_path: Path) -> None:
    other = write_key(tmp_path / "other.key")
    with pytest.raises(StorageError, match="does not match"):
        ready.raw(["--debug", "--db", ready.db_url, "--key-file", str(other), "users", "list"])


# Bad input and usage: exit 2 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("no-such-command",), "No such command 'no-such-command'"),
        (("users", "frobnicate"), "No such command 'frobnicate'"),
        (("users", "add"), "Missing argument"),
        (("users", "list", "--colour"), "No such option"),
        (("users", "list", "--limit", "0"), "--limit"),
        (("users", "list", "--limit", "many"), "--limit"),
        (("demo", "--users", "-1"), "--users"),
        (("users", "set-mfa", "root"), "--type"),
        (("init",), "--admin"),
        (("users",), "needs a command"),
        (("settings",), "needs a command"),
    ],
)
def test_usage_errors(sqlite_cli: Cli, args: tuple[str, ...], fragment: str) -> None:
    line = assert_one_error_line(sqlite_cli(*args), 2, fragment)
    assert "--help" in line


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("users", "add", "bob", "--email", "bob@"), "not a valid email"),
        (("users", "add", "bob", "--role", "root"), "not a role"),
        (("users", "set-mfa", "root", "--type", "sms2", "--configure-later"), "not an MFA type"),
        (("users", "set-mfa", "ghost", "--type", "totp", "--configure-later"), "no user 'ghost'"),
        (("users", "reset-mfa", "ghost"), "no user 'ghost'"),
        (("users", "unlock", "ghost"), "no user 'ghost'"),
        (("users", "delete", "ghost", "--yes"), "no user 'ghost'"),
        (("users", "set-password", "root", "--password-stdin"), "standard input"),
        (("users", "add", "bob", "--password-stdin"), "standard input"),
    ],
)
def test_bad_input(sqlite_ready: Cli, args: tuple[str, ...], fragment: str) -> None:
    """Bad input is 2; an unknown user is bad input for management (it is 1 only for verify)."""
    assert_one_error_line(sqlite_ready(*args), 2, fragment)
    assert set(sqlite_ready.users()) == {"root"}


def test_user_text_in_an_error_is_escaped(sqlite_ready: Cli) -> None:
    result = sqlite_ready("users", "unlock", "evil\x1b]0;pwned\x07")
    line = assert_one_error_line(result, 2)
    assert "\x1b" not in result.err and "\x07" not in result.err
    assert "\\x1b" in line


def test_environment_variables_name_the_database_and_key(
    sqlite_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MFA_TUI_DATABASE_URL", sqlite_cli.db_url)
    monkeypatch.setenv("MFA_TUI_KEY_FILE", str(sqlite_cli.key_file))
    created = sqlite_cli.raw(
        ["init", "--admin", "root", "--password-stdin"], stdin=ADMIN_PASSWORD + "\n"
    )
    assert created.code == 0, created
    assert sqlite_cli.key_file.exists()
    assert set(sqlite_cli.users()) == {"root"}


# Real processes: what reaches a person's terminal -------------------------------------------------


@pytest.mark.slow
def test_no_traceback_reaches_the_terminal(
    sqlite_ready: Cli, sqlite_process: Process, tmp_path: Path
) -> None:
    unreachable = sqlite_process("users", "list", db=UNREACHABLE_POSTGRES)
    assert_one_error_line(unreachable, 3, "Cannot reach the database server")

    usage = sqlite_process("users", "add")
    assert_one_error_line(usage, 2, "Missing argument")

    wrong_key = write_key(tmp_path / "other.key")
    assert_one_error_line(sqlite_process("users", "list", key_file=wrong_key), 3, "does not match")


@pytest.mark.slow
def test_debug_shows_the_traceback(sqlite_process: Process) -> None:
    result = sqlite_process("--debug", "users", "list", db=UNREACHABLE_POSTGRES)
    assert result.code != 0
    assert "Traceback (most recent call last)" in result.err
    assert "StorageError" in result.err
