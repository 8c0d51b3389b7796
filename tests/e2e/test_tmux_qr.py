"""The QR code of "Configure now", read by zbar from a real 80×24 terminal (tmux).

The console runs as a person starts it (``python -m mfa_tui --db … --key-file …``) on a database
seeded by ``mfa-tui demo``. The test types what a person would type — the admin's login, "/" and a
name, Enter, Tab to Type, Authenticator, Tab to "Configure now", Enter — reads the terminal with
``tmux capture-pane`` and decodes the QR code from that text with zbar. Then it types the code an
authenticator app would show for the decoded secret and saves, and the CLI sees the user's
Authenticator configured: the code on the screen carries the secret the server keeps.

tmux runs on a socket of its own in a temporary folder, without the user's tmux configuration and
without a status line, so the pane is exactly 80×24.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest

from tests.helpers.qr_decode import decode_qr_text

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[2]
WIDTH, HEIGHT = 80, 24
TIMEOUT = 15.0
USER = "bob"  # a demo login without MFA
TABS_FROM_USERNAME_TO_TYPE = 7  # display name, email, phone, role, enabled, new password, Type


@dataclass
class Terminal:
    """One tmux session running the console, driven by keys and read as text."""

    socket: Path
    session: str = "console"

    def tmux(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        assert result.returncode == 0, f"tmux {' '.join(args)}: {result.stderr.strip()}"
        return result.stdout

    def screen(self) -> list[str]:
        return self.tmux("capture-pane", "-p", "-t", self.session).splitlines()

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", self.session, "-l", "--", text)

    def press(self, *keys: str) -> None:
        # One key per call with a short pause: keys glued together can arrive as one paste.
        for key in keys:
            self.tmux("send-keys", "-t", self.session, key)
            time.sleep(0.1)

    def wait_for(self, what: str, test: Callable[[list[str]], bool]) -> list[str]:
        deadline = time.monotonic() + TIMEOUT
        while True:
            lines = self.screen()
            if test(lines):
                return lines
            if time.monotonic() > deadline:
                shown = "\n".join(lines)
                pytest.fail(f"after {TIMEOUT:.0f} s the terminal shows no {what}:\n{shown}")
            time.sleep(0.1)

    def wait_for_text(self, text: str) -> list[str]:
        return self.wait_for(repr(text), lambda lines: any(text in line for line in lines))


def _require_tools() -> None:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux)")
    try:
        import pyzbar.pyzbar  # noqa: F401
    except ImportError as exc:  # also raised when the zbar library itself is missing
        pytest.skip(f"QR decoding needs pyzbar and the zbar library (libzbar0): {exc}")


@dataclass(frozen=True)
class Database:
    url: str
    key_file: Path

    def command(self, *args: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "mfa_tui",
            "--db",
            self.url,
            "--key-file",
            str(self.key_file),
            *args,
        ]

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            self.command(*args),
            cwd=PROJECT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"mfa-tui {' '.join(args)}: {result.stderr}"
        return result.stdout


@dataclass(frozen=True)
class Console:
    terminal: Terminal
    database: Database
    admin_password: str


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    """The console in an 80×24 tmux pane, on a fresh database seeded by ``mfa-tui demo``."""
    _require_tools()
    database = Database(f"sqlite:///{tmp_path / 'mfa.db'}", tmp_path / "secret.key")
    logins = database.cli("demo", "--users", "20")
    found = re.search(r"^\s*admin\s+(\S+)\s+admin\b", logins, re.MULTILINE)
    assert found, f"no admin login in the demo output:\n{logins}"

    # A short private folder: tmux sockets are Unix sockets, whose paths have a length limit.
    folder = Path(tempfile.mkdtemp(prefix="mfa-tmux-"))
    config = folder / "tmux.conf"
    config.write_text("set -g status off\n")
    terminal = Terminal(folder / "socket")
    environment = {key: value for key, value in os.environ.items() if key != "TMUX"}
    environment.pop("NO_COLOR", None)
    command = f"cd {shlex.quote(str(PROJECT))} && exec {shlex.join(database.command())}"
    new_session = ["new-session", "-d", "-s", terminal.session, "-x", str(WIDTH), "-y", str(HEIGHT)]
    subprocess.run(
        ["tmux", "-S", str(terminal.socket), "-f", str(config), *new_session, command],
        env=environment,
        check=True,
        timeout=10,
    )
    try:
        yield Console(terminal, database, found.group(1))
    finally:
        subprocess.run(
            ["tmux", "-S", str(terminal.socket), "kill-server"],
            capture_output=True,
            timeout=10,
            check=False,
        )
        shutil.rmtree(folder, ignore_errors=True)


def test_configure_now_qr_decodes_from_an_80x24_terminal(console: Console) -> None:
    terminal = console.terminal
    size = terminal.tmux(
        "display-message", "-p", "-t", terminal.session, "#{pane_width}x#{pane_height}"
    )
    assert size.strip() == f"{WIDTH}x{HEIGHT}"

    # Log in as the demo administrator.
    terminal.wait_for_text("Log in")
    terminal.type("admin")
    terminal.wait_for_text("admin")
    terminal.press("Enter")
    terminal.type(console.admin_password)
    terminal.wait_for_text("•" * len(console.admin_password))
    terminal.press("Enter")
    terminal.wait_for_text("Administration – Users")

    # "/" search, Enter to the table, Enter to edit the one match. Focus moves a moment after
    # the key, so each step waits for the footer: it lists "⏎ Edit" only while the table has it.
    table_has_focus = lambda lines: "Edit" in lines[-1]  # noqa: E731
    terminal.wait_for("the users table with the focus", table_has_focus)
    terminal.press("/")
    terminal.wait_for("the search field with the focus", lambda lines: not table_has_focus(lines))
    terminal.type(USER)
    terminal.wait_for_text(f"1 user matching '{USER}'")
    terminal.press("Enter")
    terminal.wait_for("the users table with the focus", table_has_focus)
    terminal.press("Enter")
    terminal.wait_for_text(f"User edit – {USER}")
    # Type: Tab there from the username field, Enter opens the list, Down and Enter choose.
    terminal.press(*["Tab"] * TABS_FROM_USERNAME_TO_TYPE, "Enter")
    terminal.wait_for_text("Authenticator (TOTP)")
    terminal.press("Down", "Enter")
    terminal.wait_for(
        "Type Authenticator with Configure now",
        lambda lines: (
            any(re.match(r"^ Type +Authenticator \(TOTP\)", line) for line in lines)
            and any("Configure now" in line for line in lines)
        ),
    )
    # Past "Configure later by user" (unchecked: this user has no MFA yet) to "Configure now".
    terminal.press("Tab", "Tab", "Enter")

    # At 80×24 the code does not fit beside the form, so it is shown alone, full screen.
    # Its footer says how to go back.
    screen = terminal.wait_for(
        "full-screen QR code with 'esc Back'",
        lambda lines: "esc Back" in lines[-1] and bool(decode_qr_text(lines)),
    )
    [uri] = decode_qr_text(screen)
    parsed = urlparse(uri)
    assert (parsed.scheme, parsed.netloc, parsed.path) == ("otpauth", "totp", f"/mfa-tui:{USER}")
    query = parse_qs(parsed.query)
    assert query["issuer"] == ["mfa-tui"]
    [secret] = query["secret"]
    assert len(secret) == 32  # 160 bits, base32

    # Back to the form; the code field has the focus. Enter the app's code and save.
    terminal.press("Escape")
    terminal.wait_for_text("Secret for manual entry")
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    terminal.wait_for_text(grouped)
    terminal.type(pyotp.TOTP(secret).now())
    terminal.press("Enter")
    terminal.wait_for_text("Code verified")
    terminal.press("C-s")
    terminal.wait_for_text("Administration – Users")

    [row] = json.loads(console.database.cli("users", "list", "--json", "--search", USER))
    assert (row["username"], row["mfa_type"], row["mfa_status"]) == (USER, "totp", "configured")
    terminal.press("C-q")
