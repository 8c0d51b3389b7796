"""The real PAM stack: pamtester → libpam → pam_exec → the installed ``mfa-tui verify --pam``.

The PAM service is the documented one (deploy/etc/pam.d/mfa-tui), written into /etc/pam.d under a
name of its own and removed afterwards, with two changes a test needs: the installed script of this
virtual environment instead of /usr/local/bin/mfa-tui, with --db and --key-file (pam_exec passes
no environment, and the test does not touch /etc/mfa-tui), and without the setpriv drop to the
service account (this environment's interpreter may not be readable by another account). The
module line, its options and the command's own arguments are the documented ones.

pamtester asks for the authtok the way sshd's keyboard-interactive does, through the PAM
conversation; the test answers on its standard input. PAM runs a real process with the real
clock, so codes are computed with pyotp at the real time; the server's drift of one step makes a
30-second boundary in between harmless.

Skipped, with the reason, when not root (writing /etc/pam.d) or without pamtester or pam_exec.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from glob import glob
from pathlib import Path

import pyotp
import pytest

from tests.cli import conftest as cli_fixtures
from tests.cli.conftest import Cli, configure_totp, wrong_code
from tests.e2e.test_verify_service import Installation

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[2]
DOCUMENTED = PROJECT / "deploy" / "etc" / "pam.d" / "mfa-tui"
DOCUMENTED_PROGRAM = "/usr/local/bin/mfa-tui"
PRIVILEGE_DROP = "/usr/bin/setpriv "
MFA_TUI = Path(sys.executable).parent / "mfa-tui"
# Where distributions keep PAM modules (Debian: /usr/lib/<multiarch triplet>/security).
PAM_MODULE_PATTERNS = (
    "/usr/lib/*/security/pam_exec.so",
    "/usr/lib*/security/pam_exec.so",
    "/lib*/security/pam_exec.so",
)


def _need_pam() -> None:
    if os.geteuid() != 0:
        pytest.skip("writing a PAM service into /etc/pam.d needs root")
    if shutil.which("pamtester") is None:
        pytest.skip("pamtester is not installed (apt-get install pamtester)")
    if not any(glob(pattern) for pattern in PAM_MODULE_PATTERNS):
        pytest.skip("the pam_exec module is not installed (libpam-modules)")
    if not MFA_TUI.exists():
        pytest.skip(f"no installed mfa-tui script next to {sys.executable}")


def service_line(db_url: str, key_file: Path) -> str:
    """The documented auth line, run as described in the module docstring."""
    module, arguments = _documented_line()
    return f"{module} {MFA_TUI} --db {db_url} --key-file {key_file}{arguments}\n"


def service_line_with_config(config: Path) -> str:
    """The documented line with the database, key and verify socket from ``config`` (as from
    /etc/mfa-tui/config.toml): env sets MFA_TUI_CONFIG, since pam_exec passes no environment.
    Under ``-X importtime`` (its report reaches pamtester's output through pam_exec's stdout)."""
    module, arguments = _documented_line()
    return (
        f"{module} /usr/bin/env MFA_TUI_CONFIG={config} {sys.executable} -X importtime "
        f"{MFA_TUI}{arguments}\n"
    )


def _documented_line() -> tuple[str, str]:
    """The module with its options, and the arguments of mfa-tui."""
    [line] = [line for line in DOCUMENTED.read_text().splitlines() if line.startswith("auth ")]
    module, drop_and_command = line.split(f" {PRIVILEGE_DROP}", 1)
    command = drop_and_command.split(" -- ", 1)[1]
    assert command.startswith(f"{DOCUMENTED_PROGRAM} verify --pam"), command
    return module, command.removeprefix(DOCUMENTED_PROGRAM)


# The CLI tests' database with its administrator root, and the in-process CLI on it.
clean_env = cli_fixtures.clean_env
sqlite_cli = cli_fixtures.sqlite_cli
sqlite_template = cli_fixtures.sqlite_template
ready = cli_fixtures.sqlite_ready


@pytest.fixture
def service(ready: Cli) -> Iterator[str]:
    _need_pam()
    name = f"mfa-tui-test-{secrets.token_hex(4)}"
    path = Path("/etc/pam.d") / name
    path.write_text(service_line(ready.db_url, ready.key_file))
    try:
        yield name
    finally:
        path.unlink(missing_ok=True)


def pamtester(service: str, user: str, authtok: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["pamtester", service, user, "authenticate"],
        input=authtok + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _accepted(done: subprocess.CompletedProcess[str]) -> bool:
    return done.returncode == 0 and "successfully authenticated" in done.stdout


def test_the_documented_pam_line_is_the_one_tested(ready: Cli) -> None:
    line = service_line(ready.db_url, ready.key_file)

    assert line.startswith("auth required pam_exec.so expose_authtok quiet stdout ")
    assert line.endswith(" verify --pam --require\n")


def test_a_correct_code_is_accepted_once(service: str, ready: Cli) -> None:
    ready.ok("users", "add", "alice")
    secret = configure_totp(ready, "alice")
    code = pyotp.TOTP(secret).now()

    first = pamtester(service, "alice", code)
    assert _accepted(first), first
    # pam_exec's "stdout" shows mfa-tui's message to the person logging in.
    assert "Code accepted." in first.stdout

    replay = pamtester(service, "alice", code)
    assert replay.returncode != 0, replay
    assert "Refused: the code was not accepted." in replay.stdout

    wrong = pamtester(service, "alice", wrong_code(secret))
    assert wrong.returncode != 0, wrong

    events = ready.ok("audit", "list", "--json", "--search", "verify.").json
    assert [(e["action"], e["actor"]) for e in reversed(events)] == [
        ("verify.accepted", f"pam:{service}"),
        ("verify.refused", f"pam:{service}"),
        ("verify.refused", f"pam:{service}"),
    ]


def test_lockout_applies_through_pam(service: str, ready: Cli) -> None:
    ready.ok("users", "add", "bob")
    secret = configure_totp(ready, "bob")
    ready.ok("settings", "set", "lockout.attempts", "2")

    for _ in range(2):
        assert pamtester(service, "bob", wrong_code(secret)).returncode != 0
    locked = pamtester(service, "bob", pyotp.TOTP(secret).now())

    assert not _accepted(locked), locked
    assert ready.users()["bob"]["locked"] is True
    [last] = ready.ok("audit", "list", "--json", "--limit", "1").json
    assert (last["action"], last["details"]) == ("verify.refused", {"reason": "locked"})

    ready.ok("users", "unlock", "bob")
    assert _accepted(pamtester(service, "bob", pyotp.TOTP(secret).now()))


def test_unknown_users_and_users_without_a_factor_are_refused(service: str, ready: Cli) -> None:
    ready.ok("users", "add", "carol")  # no second factor: --require refuses her

    assert pamtester(service, "carol", "123456").returncode != 0
    assert pamtester(service, "nobody-here", "123456").returncode != 0


def test_pam_asks_the_verify_service(ready: Cli, clean_env: dict[str, str], tmp_path: Path) -> None:
    """pamtester → pam_exec → the thin client → the verify service, which checks the code."""
    _need_pam()
    ready.ok("users", "add", "dora")
    secret = configure_totp(ready, "dora")
    folder = Path(tempfile.mkdtemp(prefix="mfa-vs-"))  # short: a socket path has ≤ 107 bytes
    name = f"mfa-tui-test-{secrets.token_hex(4)}"
    pam_file = Path("/etc/pam.d") / name
    installation = Installation(ready, clean_env, folder)
    try:
        installation.start()
        pam_file.write_text(service_line_with_config(installation.config))
        code = pyotp.TOTP(secret).now()

        first = pamtester(name, "dora", code)
        replay = pamtester(name, "dora", code)
    finally:
        pam_file.unlink(missing_ok=True)
        if installation.service is not None:
            installation.stop()
        shutil.rmtree(folder, ignore_errors=True)

    assert _accepted(first), first
    assert "Code accepted." in first.stdout
    # The client never imported the database layer: the service answered.
    assert "import time:" in first.stdout and "sqlalchemy" not in first.stdout, first.stdout
    assert replay.returncode != 0 and "Refused: the code was not accepted." in replay.stdout
    assert installation.audit() == [
        ("verify.accepted", f"pam:{name}", "dora"),
        ("verify.refused", f"pam:{name}", "dora"),
    ]
