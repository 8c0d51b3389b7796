"""``mfa-tui serve`` as a person's browser sees it: Debian's Chromium, headless, through Playwright.

- ``ServedConsole`` runs ``mfa-tui serve`` as a real process on a free loopback port, on a
  database and key file of the test's, and lists the app process of each open tab (from /proc).
- ``open_browser`` starts the system Chromium (``/usr/bin/chromium``, never a browser download),
  or skips the test with the reason when it or the ``playwright`` package is missing.
- ``ConsoleTab`` is one tab: it types with the keyboard and reads the screen as text.

The console is xterm.js drawing on a canvas, and textual-serve's script keeps its xterm
``Terminal`` in a closure. An init script catches it as the script stores it (``this.terminal =
new Terminal(…)``): a setter on ``Object.prototype`` that turns into a plain property at the first
assignment, so nothing else changes. The screen text then comes from xterm's own buffer, and every
wait polls for what it waits for (in the page, with ``wait_for_function``), never a fixed sleep.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Download, Page

    from mfa_tui.core.context import Context

from tests.helpers.ports import free_port

PROJECT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# A loaded 2-core machine starts a Python app per tab: waits are generous, and polled.
TIMEOUT_SECONDS = 60.0

CATCH_TERMINAL = """
Object.defineProperty(Object.prototype, "terminal", {
  configurable: true,
  set(value) {
    Object.defineProperty(this, "terminal", {
      value, writable: true, configurable: true, enumerable: true,
    });
    if (value && value.buffer && value.buffer.active) window.mfaTerminal = value;
  },
});
"""
SCREEN_LINES = """() => {
  const terminal = window.mfaTerminal;
  if (!terminal) return [];
  const buffer = terminal.buffer.active;
  const lines = [];
  for (let y = 0; y < terminal.rows; y++) {
    const line = buffer.getLine(buffer.viewportY + y);
    lines.push(line ? line.translateToString(true) : "");
  }
  return lines;
}"""
# [where, texts, shown]: whether every text is (or, shown false, none is) on the screen, on the
# footer (the last line), or just above the text cursor. Textual moves the terminal's cursor to the
# focused input's cursor, so the line above it (two above, past a tall border) shows its label.
SCREEN_MATCHES = f"""([where, texts, shown]) => {{
  const lines = ({SCREEN_LINES})();
  const cursorY = window.mfaTerminal ? window.mfaTerminal.buffer.active.cursorY : 0;
  const seen = {{
    screen: lines.join("\\n"),
    footer: lines.slice(-1).join(""),
    label: lines.slice(Math.max(0, cursorY - 2), cursorY).join("\\n"),
  }}[where];
  return texts.every((text) => seen.includes(text) === shown);
}}"""


@dataclass(frozen=True)
class Prepared:
    """A database for ``mfa-tui serve``: the demo users, the administrator with an Authenticator."""

    url: str
    key_file: Path
    admin: str
    admin_password: str
    admin_secret: str
    # Every demo login's password (the helpdesk agent, alice, bob, ...), by username.
    passwords: dict[str, str] = field(default_factory=dict)

    def context(self) -> Context:
        from mfa_tui.core.config import Config
        from mfa_tui.core.context import open_context

        return open_context(Config(self.url, self.key_file))


def prepare_database(folder: Path) -> Prepared:
    """``mfa-tui demo``'s users on a new SQLite file, and the administrator's Authenticator
    configured as ``users set-mfa admin --type totp`` would.

    The enrollment proves the code of a time step two minutes ago (its clock is set back), so the
    current step's code is still unused when the test logs in with it.
    """
    from urllib.parse import parse_qs, urlparse

    import pyotp

    from mfa_tui.core.access import Actor
    from mfa_tui.core.clock import FixedClock
    from mfa_tui.core.config import Config
    from mfa_tui.core.context import open_context
    from mfa_tui.core.demo import seed_demo
    from mfa_tui.core.services.mfa import MfaService

    url, key_file = f"sqlite:///{folder / 'mfa.db'}", folder / "secret.key"
    clock = FixedClock(datetime.now(UTC) - timedelta(minutes=2))
    context = open_context(Config(url, key_file), clock)
    try:
        logins = seed_demo(context, Actor.cli())
        [admin] = [login for login in logins if login.role == "admin"]
        mfa = MfaService(context)
        start = mfa.begin_enrollment(Actor.cli(), admin.username, "totp")
        assert start.provisioning_uri is not None
        secret = parse_qs(urlparse(start.provisioning_uri).query)["secret"][0]
        code = pyotp.TOTP(secret).at(clock.now())
        assert mfa.confirm_code(Actor.cli(), start.credential_id, code)
        mfa.activate(Actor.cli(), admin.username, start.credential_id)
    finally:
        context.close()
    passwords = {login.username: login.password for login in logins}
    return Prepared(url, key_file, admin.username, admin.password, secret, passwords)


def mfa_tui(database: Prepared, *args: str) -> list[str]:
    """The command line of ``mfa-tui`` on ``database``, as a person would type it."""
    key_file = str(database.key_file)
    return [sys.executable, "-m", "mfa_tui", "--db", database.url, "--key-file", key_file, *args]


class ServedConsole:
    """``mfa-tui serve`` on 127.0.0.1 and a free port, until ``stop``."""

    def __init__(self, database: Prepared, log: Path, *options: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        command = mfa_tui(database, "serve", "--port", str(self.port), *options)
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                command,
                cwd=PROJECT,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=server_environment(),
                preexec_fn=die_with_parent,
            )
        try:
            self._wait_until_it_answers()
        except BaseException:
            self.stop()
            raise

    def _wait_until_it_answers(self) -> None:
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while True:
            if self.process.poll() is not None:
                pytest.fail(
                    f"mfa-tui serve exited with {self.process.returncode}:\n{self.output()}"
                )
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mfa-tui serve did not answer in time:\n{self.output()}")
            time.sleep(0.1)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def tab_processes(self) -> list[int]:
        """The console processes the server started (one per open tab), from /proc."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:  # gone meanwhile
                continue
            if int(parent) == self.process.pid and b"mfa_tui.serve.tab" in command:
                found.append(int(entry.name))
        return sorted(found)

    def wait_for_tabs(self, count: int) -> list[int]:
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while len(tabs := self.tab_processes()) != count:
            if time.monotonic() > deadline:
                pytest.fail(f"{len(tabs)} tab processes, not {count}:\n{self.output()}")
            time.sleep(0.1)
        return tabs

    def stop(self) -> None:
        tabs = self.tab_processes()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        for pid in tabs:  # started by this server for this test; none should outlive it
            with suppress(OSError):
                if b"mfa_tui.serve.tab" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)


def die_with_parent() -> None:
    """In a child before exec: SIGTERM when the test process dies, so no server outlives a run."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def server_environment() -> dict[str, str]:
    """This environment without the variables that would pick a database or key of their own."""
    environment = dict(os.environ)
    for name in ("MFA_TUI_DATABASE_URL", "MFA_TUI_KEY_FILE", "MFA_TUI_SECRET_KEY", "NO_COLOR"):
        environment.pop(name, None)
    return environment


@contextmanager
def open_browser() -> Iterator[Browser]:
    """Debian's Chromium, headless; the test is skipped with the reason if it cannot run."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        pytest.skip(f"the playwright package is not installed: {error}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class ConsoleTab:
    """One browser tab on the served console."""

    def __init__(self, browser: Browser, url: str, size: tuple[int, int] = (1280, 900)) -> None:
        self.context = browser.new_context(
            viewport={"width": size[0], "height": size[1]}, accept_downloads=True
        )
        self.context.add_init_script(CATCH_TERMINAL)
        # textual-serve's page opens each download in a new tab, which closes once it is saved.
        self.downloads: list[Download] = []
        self.context.on(
            "page", lambda page: page.on("download", lambda d: self.downloads.append(d))
        )
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_SECONDS * 1000)
        self.page.goto(url)

    def lines(self) -> list[str]:
        return list(self.page.evaluate(SCREEN_LINES))

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.lines())

    def wait_for(self, *texts: str) -> None:
        """Until the screen shows every one of ``texts``."""
        self._wait("screen", texts, shown=True)

    def wait_for_footer(self, text: str, *, shown: bool = True) -> None:
        """Until the footer (the last line) shows ``text`` or, with ``shown=False``, no longer does.

        The footer lists a widget's keys only while it has the focus: a way to see the focus move.
        """
        self._wait("footer", (text,), shown=shown)

    def wait_for_focus(self, label: str) -> None:
        """Until the input under the line showing ``label`` has the focus.

        Needed before typing after a key that moves the focus: Textual moves it when it handles
        the message the key caused, after keys already on their way went to the old field.
        """
        self._wait("label", (label,), shown=True)

    def _wait(self, where: str, texts: tuple[str, ...], *, shown: bool) -> None:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            self.page.wait_for_function(
                SCREEN_MATCHES, arg=[where, list(texts), shown], polling=100
            )
        except PlaywrightTimeout:
            state = "never showed" if shown else "still shows"
            pytest.fail(
                f"after {TIMEOUT_SECONDS:.0f} s the {where} {state} {texts!r}; it shows:\n{self.text()}"
            )

    def focus(self) -> None:
        self.page.locator(".xterm-helper-textarea").focus()

    def type(self, text: str) -> None:
        self.page.keyboard.type(text)

    def press(self, *keys: str) -> None:
        for key in keys:
            self.page.keyboard.press(key)

    def download(self, key: str) -> tuple[str, str]:
        """Press ``key``, which delivers a file: the file name and text the browser saves."""
        seen = len(self.downloads)
        self.press(key)
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while len(self.downloads) == seen:
            if time.monotonic() > deadline:
                pytest.fail(f"no download after {key!r}; the console shows:\n{self.text()}")
            self.page.wait_for_timeout(100)  # lets Playwright deliver the browser's events
        download = self.downloads[seen]
        return download.suggested_filename, Path(download.path()).read_text()

    def screenshot(self, path: Path) -> Path:
        self.page.screenshot(path=str(path))
        return path

    def close(self) -> None:
        self.context.close()
