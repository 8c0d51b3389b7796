"""``mfa-tui login`` in a real terminal: a pending user enrolls without any password prompt.

tmux at 80×24 runs the installed ``mfa-tui`` script, as ForceCommand would (minus the sudo that
only changes whose rights it runs with). The mfa-tui user is named after the OS account running
the test, exactly as the command maps them; the operator sets it to "Configure later by user" with
the CLI. The test reads the QR code from what tmux shows with zbar, types the code pyotp computes
at the real time, and lands on Preferences; the database and the audit log then agree.

Skipped, with the reason, where tmux or the zbar library is missing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyotp
import pytest

from mfa_tui.core.config import service_account
from mfa_tui.core.os_identity import terminal_user
from tests.e2e import test_tmux_enrollment as tmux
from tests.helpers.qr_decode import decode_qr_text

pytestmark = pytest.mark.slow

MFA_TUI = Path(sys.executable).parent / "mfa-tui"


# The enrollment test's terminal (its own tmux server) and environment.
env = tmux.env
terminal = tmux.terminal


def test_a_pending_user_enrolls_through_mfa_tui_login(
    terminal: tmux.Terminal, env: dict[str, str], tmp_path: Path
) -> None:
    if not MFA_TUI.exists():
        pytest.skip(f"no installed mfa-tui script next to {sys.executable}")
    # Whom the command will see: this account, or the one a sudo in the environment names.
    me = terminal_user(service_account(), env).name
    global_args = ["--db", f"sqlite:///{tmp_path / 'mfa.db'}", "--key-file", str(tmp_path / "k")]
    tmux.cli(env, global_args, "users", "add", me)  # no password: SSH has authenticated them
    tmux.cli(env, global_args, "users", "set-mfa", me, "--type", "totp", "--configure-later")

    terminal.start([str(MFA_TUI), *global_args, "login"])
    lines = terminal.wait_for("Continue")
    assert not any("Password" in line for line in lines)
    terminal.key("Enter")  # Continue has the focus
    uris: list[str] = []
    terminal.wait_for("the QR code", lambda lines: uris.extend(decode_qr_text(lines)) or uris)
    totp = pyotp.parse_uri(uris[0])
    assert totp.name == me and totp.issuer == "mfa-tui"
    terminal.key("Escape")
    terminal.wait_for("Code from the app")

    # The server allows one step of clock drift, so a 30-second boundary in between is harmless.
    code = totp.now()
    terminal.type(code)
    terminal.wait_for(code)
    terminal.key("Enter")
    terminal.wait_for("I have saved these codes")
    terminal.key("Enter")

    lines = terminal.wait_for("Status: Configured")
    assert any("Preferences – Multi-factor" in line for line in lines)
    assert any("Backup codes left: 10" in line for line in lines)

    users = {
        row["username"]: row
        for row in json.loads(tmux.cli(env, global_args, "users", "list", "--json"))
    }
    assert (users[me]["mfa_type"], users[me]["mfa_status"]) == ("totp", "configured")
    events = json.loads(tmux.cli(env, global_args, "audit", "list", "--json"))
    started = next(e for e in events if e["action"] == "login.terminal")
    assert (started["actor"], started["target"], started["details"]["next"]) == (
        f"os:{me}",
        me,
        "enroll",
    )
    logged_in = next(e for e in events if e["action"] == "login.success")
    assert (logged_in["actor"], logged_in["details"]) == (me, {"method": "enrollment"})
