"""First-login enrollment in a real terminal: tmux at 80×24 running ``python -m mfa_tui``.

The user is created and set to "Configure later by user" with the CLI, exactly as an operator
would. The test then types like a person (text and Enter as separate key presses), reads the QR
code from what tmux shows with zbar, computes the code with pyotp at the real time, saves the
backup codes and lands on Preferences; the database then says the factor is configured.

Skipped, with the reason, where tmux or the zbar library is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyotp
import pytest

from tests.helpers.qr_decode import decode_qr_text

pytestmark = pytest.mark.slow

SOCKET = "helper8"  # a tmux server of its own: never the user's default one
PASSWORD = "Correct-Horse-Battery-9"
WIDTH, HEIGHT = 80, 24


def _need_tools() -> None:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux)")
    try:
        import pyzbar.pyzbar  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"QR decoding needs pyzbar and the zbar library (libzbar0): {exc}")


class Terminal:
    def __init__(self, session: str, env: dict[str, str]) -> None:
        self.session = session
        self.env = env

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", SOCKET, *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=30,
            check=True,
        )
        return done.stdout

    def start(self, command: list[str]) -> None:
        self.tmux(
            "new-session",
            "-d",
            "-s",
            self.session,
            "-x",
            str(WIDTH),
            "-y",
            str(HEIGHT),
            " ".join(command),
        )

    def lines(self, *, styled: bool = False) -> list[str]:
        """The screen's rows; ``styled`` keeps the escape sequences (colours, the cursor cell)."""
        flags = ["-e"] if styled else []
        return self.tmux("capture-pane", "-p", *flags, "-t", self.session).splitlines()

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", self.session, "-l", text)

    def key(self, name: str) -> None:
        self.tmux("send-keys", "-t", self.session, name)

    def wait_for(
        self, what: str, test: Callable[[list[str]], object] | None = None, timeout: float = 30
    ) -> list[str]:
        """Poll the screen until ``what`` is on it (or ``test`` holds); fail showing the screen."""
        check = test or (lambda lines: any(what in line for line in lines))
        deadline = time.monotonic() + timeout
        while True:
            lines = self.lines()
            if check(lines):
                return lines
            if time.monotonic() > deadline:
                shown = "\n".join(lines)
                raise AssertionError(
                    f"waited {timeout} s for {what!r}; the terminal shows:\n{shown}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        subprocess.run(
            ["tmux", "-L", SOCKET, "kill-session", "-t", self.session],
            capture_output=True,
            env=self.env,
            timeout=30,
            check=False,
        )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MFA_TUI_", "TMUX", "NO_COLOR"))
    }
    clean.update(
        LANG="C.UTF-8",
        LC_ALL="C.UTF-8",
        TERM="xterm-256color",
        TEXTUAL_ANIMATION="none",
        XDG_DATA_HOME=str(tmp_path / "xdg"),
    )
    return clean


@pytest.fixture
def terminal(env: dict[str, str]) -> Iterator[Terminal]:
    _need_tools()
    session = f"enroll-{os.getpid()}-{time.monotonic_ns()}"
    terminal = Terminal(session, env)
    try:
        yield terminal
    finally:
        terminal.stop()


def cli(env: dict[str, str], global_args: list[str], *args: str, stdin: str = "") -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mfa_tui", *global_args, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"{args} exited {done.returncode}: {done.stderr}"
    return done.stdout


def test_a_configure_later_user_enrolls_at_first_login_in_a_real_terminal(
    terminal: Terminal, env: dict[str, str], tmp_path: Path
) -> None:
    global_args = ["--db", f"sqlite:///{tmp_path / 'mfa.db'}", "--key-file", str(tmp_path / "k")]
    cli(env, global_args, "users", "add", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    cli(env, global_args, "users", "set-mfa", "alice", "--type", "totp", "--configure-later")

    terminal.start([sys.executable, "-m", "mfa_tui", *global_args])
    terminal.wait_for("Username")
    terminal.type("alice")
    terminal.wait_for("alice")  # shown in the field: the form is live
    terminal.key("Enter")
    # The focus moves through a message, after keys already read: wait until the username field
    # has lost its cursor (a styled cell right after the text) before typing the password.
    terminal.wait_for(
        "the focus to leave the username field",
        lambda _: any(re.search(r"alice {3}", line) for line in terminal.lines(styled=True)),
    )
    terminal.type(PASSWORD)
    terminal.wait_for(
        "the password, masked", lambda lines: any("•" * len(PASSWORD) in line for line in lines)
    )
    terminal.key("Enter")

    terminal.wait_for("Continue")
    terminal.key("Enter")  # Continue has the focus
    uris: list[str] = []
    terminal.wait_for("the QR code", lambda lines: uris.extend(decode_qr_text(lines)) or uris)
    totp = pyotp.parse_uri(uris[0])
    assert totp.name == "alice" and totp.issuer == "mfa-tui"
    terminal.key("Escape")
    terminal.wait_for("Code from the app")

    # The server allows one step of clock drift, so a 30-second boundary in between is harmless.
    code = totp.now()
    terminal.type(code)
    terminal.wait_for(code)
    terminal.key("Enter")
    terminal.wait_for("I have saved these codes")
    terminal.key("Enter")  # "I have saved these codes" has the focus

    lines = terminal.wait_for("Status: Configured")
    assert any("Preferences – Multi-factor" in line for line in lines)
    assert any("Backup codes left: 10" in line for line in lines)

    users = {
        row["username"]: row for row in json.loads(cli(env, global_args, "users", "list", "--json"))
    }
    assert (users["alice"]["mfa_type"], users["alice"]["mfa_status"]) == ("totp", "configured")
