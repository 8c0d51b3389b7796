"""``verify --pam`` as pam_exec runs it, and ``login``'s answers before any screen opens.

pam_exec (expose_authtok) passes the user in PAM_USER and writes the authtok and a NUL byte on
standard input; these tests give the command exactly that. The real PAM stack is in
tests/e2e/test_pam.py.
"""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

import pyotp
import pytest

from mfa_tui.core.access import Actor
from mfa_tui.core.os_identity import account_name
from mfa_tui.core.services.users import GeneralFields, UserService
from tests.cli.conftest import (
    Cli,
    Process,
    assert_one_error_line,
    configure_totp,
    wrong_code,
)

REFUSED = "mfa-tui: Refused: the code was not accepted."


@pytest.fixture
def pam_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """What pam_exec puts in the environment (and nothing else that names a database)."""
    monkeypatch.setenv("PAM_USER", "bob")
    monkeypatch.setenv("PAM_SERVICE", "sshd")
    monkeypatch.setenv("PAM_RHOST", "203.0.113.9")
    monkeypatch.setenv("PAM_TYPE", "auth")


def _audit(cli: Cli, action: str) -> list[dict[str, object]]:
    return [e for e in cli.ok("audit", "list", "--json").json if e["action"] == action]


@pytest.mark.usefixtures("pam_env")
def test_the_authtok_with_its_nul_byte_is_the_code_and_replays_are_refused(ready: Cli) -> None:
    ready.ok("users", "add", "bob")
    secret = configure_totp(ready, "bob")
    code = pyotp.TOTP(secret).now()

    accepted = ready("verify", "--pam", stdin=code + "\0")
    assert accepted.code == 0, accepted
    assert accepted.err_lines == ["Code accepted."]

    replay = ready("verify", "--pam", stdin=code + "\0")
    assert_one_error_line(replay, 1)
    assert replay.err == REFUSED + "\n"
    # Audited as PAM, with the service and the remote host pam_exec named.
    assert [e["actor"] for e in _audit(ready, "verify.accepted")] == ["pam:sshd@203.0.113.9"]
    assert [e["target"] for e in _audit(ready, "verify.refused")] == ["bob"]


@pytest.mark.usefixtures("pam_env")
@pytest.mark.parametrize(
    "ending", ["\0", "\n", "\r\n", "", "\0garbage\n"], ids=["nul", "lf", "crlf", "eof", "nul+junk"]
)
def test_every_way_the_code_can_end(sqlite_ready: Cli, ending: str) -> None:
    sqlite_ready.ok("users", "add", "bob")
    secret = configure_totp(sqlite_ready, "bob")

    result = sqlite_ready("verify", "--pam", stdin=pyotp.TOTP(secret).now() + ending)

    assert result.code == 0, result


@pytest.mark.usefixtures("pam_env")
def test_wrong_codes_count_towards_the_lockout(sqlite_ready: Cli) -> None:
    sqlite_ready.ok("users", "add", "bob")
    secret = configure_totp(sqlite_ready, "bob")
    sqlite_ready.ok("settings", "set", "lockout.attempts", "2")

    for _ in range(2):
        assert sqlite_ready("verify", "--pam", stdin=wrong_code(secret) + "\0").code == 1
    locked = sqlite_ready("verify", "--pam", stdin=pyotp.TOTP(secret).now() + "\0")

    assert locked.err == REFUSED + "\n"
    assert sqlite_ready.users()["bob"]["locked"] is True


@pytest.mark.usefixtures("pam_env")
def test_require_refuses_a_user_without_a_second_factor(sqlite_ready: Cli) -> None:
    sqlite_ready.ok("users", "add", "bob")

    assert sqlite_ready("verify", "--pam", stdin="x\0").code == 0
    assert_one_error_line(sqlite_ready("verify", "--pam", "--require", stdin="x\0"), 1, "required")


def test_without_pam_user_it_is_a_usage_error(
    sqlite_ready: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PAM_USER", raising=False)

    line = assert_one_error_line(sqlite_ready("verify", "--pam", stdin="123456\0"), 2)

    assert "PAM_USER is not set" in line


@pytest.mark.usefixtures("pam_env")
@pytest.mark.parametrize(
    ("args", "stdin", "fragment"),
    [
        (("bob",), "123456\0", "leave out NAME"),
        (("--send",), "123456\0", "--send cannot work with --pam"),
        ((), "\0", "was empty"),
        ((), "", "was empty"),
    ],
    ids=["name too", "send", "blank authtok", "nothing"],
)
def test_bad_pam_usage_is_one_line_with_exit_2(
    sqlite_ready: Cli, args: tuple[str, ...], stdin: str, fragment: str
) -> None:
    assert_one_error_line(sqlite_ready("verify", "--pam", *args, stdin=stdin), 2, fragment)


def test_verify_without_name_or_pam_says_what_to_give(sqlite_ready: Cli) -> None:
    assert_one_error_line(sqlite_ready("verify", stdin="123456\n"), 2, "--pam")


@pytest.mark.usefixtures("pam_env")
def test_the_config_file_names_the_database_when_pam_exec_passes_no_flags(
    sqlite_ready: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite_ready.ok("users", "add", "bob")
    secret = configure_totp(sqlite_ready, "bob")
    config = tmp_path / "config.toml"
    config.write_text(
        f'database_url = "{sqlite_ready.db_url}"\nkey_file = "{sqlite_ready.key_file.name}"\n'
    )
    monkeypatch.setenv("MFA_TUI_CONFIG", str(config))

    # No --db or --key-file: both come from the file (the key file relative to it).
    accepted = sqlite_ready.raw(["verify", "--pam"], stdin=pyotp.TOTP(secret).now() + "\0")
    assert accepted.code == 0, accepted

    # A flag still wins over the file: an empty database elsewhere knows no bob.
    other = sqlite_ready.raw(
        ["--db", f"sqlite:///{tmp_path / 'other.db'}", "verify", "--pam", "--require"],
        stdin="123456\0",
    )
    assert_one_error_line(other, 1)


def test_a_broken_config_file_is_one_line_with_exit_2(
    sqlite_cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("database_url = sqlite\n")
    monkeypatch.setenv("MFA_TUI_CONFIG", str(config))

    result = sqlite_cli.raw(["users", "list"])

    assert_one_error_line(result, 2, "config.toml is not valid TOML")


# login, before any screen --------------------------------------------------------------------------


def _login_on_a_terminal(process: Process) -> subprocess.CompletedProcess[str]:
    """``mfa-tui login`` with a pseudo-terminal as standard input and output."""
    leader, follower = pty.openpty()
    try:
        return subprocess.run(
            process.argv("login"),
            stdin=follower,
            stdout=follower,
            stderr=subprocess.PIPE,
            text=True,
            env={k: v for k, v in process.env.items() if not k.startswith("SUDO_")},
            timeout=60,
            check=False,
        )
    finally:
        os.close(follower)
        os.close(leader)


def test_login_without_a_terminal_is_a_usage_error(sqlite_ready: Cli) -> None:
    assert_one_error_line(sqlite_ready("login"), 2, "needs a terminal")


def _clear_the_way(cli: Cli) -> str:
    """The OS account's name, with no mfa-tui user of that name (the template's admin is root)."""
    me = account_name(os.getuid())
    cli.ok("users", "add", "boss", "--role", "admin")
    if me in cli.users():
        cli.ok("users", "delete", me, "--yes")
    return me


def test_login_of_an_os_account_without_an_mfa_tui_user_is_refused_and_audited(
    sqlite_ready: Cli, sqlite_process: Process
) -> None:
    me = _clear_the_way(sqlite_ready)

    done = _login_on_a_terminal(sqlite_process)

    assert done.returncode == 1, done
    assert done.stderr == (
        f"mfa-tui: There is no mfa-tui user for the OS account '{me}'; "
        "ask an administrator to add one.\n"
    )
    [refusal] = _audit(sqlite_ready, "login.terminal_refused")
    assert (refusal["actor"], refusal["details"]) == (
        f"os:{me}",
        {"reason": "unknown_user", "via": "uid"},
    )


def test_login_of_a_disabled_user_is_refused(sqlite_ready: Cli, sqlite_process: Process) -> None:
    me = _clear_the_way(sqlite_ready)
    sqlite_ready.ok("users", "add", me)
    context = sqlite_ready.context()
    try:
        users = UserService(context)
        view = users.get(me)
        users.update_general(Actor.cli(), view.id, view.version, GeneralFields(enabled=False))
    finally:
        context.close()

    done = _login_on_a_terminal(sqlite_process)

    assert done.returncode == 1, done
    assert done.stderr == "mfa-tui: This account is disabled; ask an administrator.\n"


def test_an_os_account_differing_only_in_case_is_another_account(
    sqlite_ready: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mfa-tui names ignore case; OS accounts do not ('Bob' and 'bob' can both exist)."""
    monkeypatch.setenv("PAM_USER", "Bob")
    sqlite_ready.ok("users", "add", "bob")
    secret = configure_totp(sqlite_ready, "bob")
    refused = sqlite_ready("verify", "--pam", stdin=pyotp.TOTP(secret).now() + "\0")
    assert_one_error_line(refused, 1)
    assert refused.err == REFUSED + "\n"
    # The same code still works for the account it belongs to (nothing was used up).
    assert sqlite_ready("verify", "bob", stdin=pyotp.TOTP(secret).now() + "\n").code == 0
