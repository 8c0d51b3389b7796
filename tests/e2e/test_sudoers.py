"""The documented sudo rule (deploy/etc/sudoers.d/mfa-tui), asked of the real sudo.

It must let any user run exactly ``mfa-tui login`` as the service account and nothing else: no
other command, no extra arguments (a --db would point the service account's rights at another
database), no other target account. The rule is installed in /etc/sudoers.d under a name of its
own (checked with visudo first, removed afterwards) with two changes a test needs: the installed
script of this virtual environment instead of /usr/local/bin/mfa-tui, and the existing account
``daemon`` standing in for the service account. ``sudo -l -U nobody`` answers for the account
``nobody``.

Skipped, with the reason, when not root or without sudo.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[2]
DOCUMENTED = PROJECT / "deploy" / "etc" / "sudoers.d" / "mfa-tui"
MFA_TUI = Path(sys.executable).parent / "mfa-tui"
SERVICE = "daemon"


def _need_sudo() -> None:
    if shutil.which("visudo") is None or shutil.which("sudo") is None:
        pytest.skip("sudo is not installed (apt-get install sudo)")


def test_the_documented_file_parses() -> None:
    _need_sudo()
    checked = subprocess.run(
        ["visudo", "-c", "-f", str(DOCUMENTED)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.fixture
def installed(tmp_path: Path) -> Iterator[None]:
    _need_sudo()
    if os.geteuid() != 0:
        pytest.skip("installing a rule into /etc/sudoers.d needs root")
    rule = (
        DOCUMENTED.read_text()
        .replace("/usr/local/bin/mfa-tui", str(MFA_TUI))
        .replace("(mfa-tui)", f"({SERVICE})")
    )
    draft = tmp_path / "rule"
    draft.write_text(rule)
    # A broken file in /etc/sudoers.d would break sudo for the whole machine: check it first.
    subprocess.run(["visudo", "-c", "-q", "-f", str(draft)], check=True)
    path = Path("/etc/sudoers.d") / f"mfa-tui-test-{secrets.token_hex(4)}"
    shutil.copyfile(draft, path)
    path.chmod(0o440)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def allowed(*command: str, runas: str = SERVICE) -> bool:
    """Whether sudo would let ``nobody`` run ``command`` as ``runas`` without a password."""
    asked = subprocess.run(
        ["sudo", "-n", "-l", "-U", "nobody", "-u", runas, *command],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return asked.returncode == 0


@pytest.mark.usefixtures("installed")
def test_anyone_may_run_exactly_mfa_tui_login_as_the_service_account() -> None:
    assert allowed(str(MFA_TUI), "login")

    assert not allowed(str(MFA_TUI), "login", "--db", "sqlite:////tmp/elsewhere.db")
    assert not allowed(str(MFA_TUI), "--key-file", "/tmp/other.key", "login")
    assert not allowed(str(MFA_TUI), "verify", "--pam")
    assert not allowed(str(MFA_TUI), "users", "list")
    assert not allowed(str(MFA_TUI))
    assert not allowed(str(MFA_TUI), "login", runas="root")
    assert not allowed("/bin/sh")
