"""What ``mfa-tui serve`` keeps out, against the real server process and Debian's Chromium.

- A tab that has not logged in reaches nothing: its console shows only the login screen whatever
  keys it sends (the signed-in screens' keys, the command palette), the database does not change,
  and the HTTP side (the page, a download address, the static folder) shows no user data.
- Closing a tab ends its app process.
- A websocket whose Origin is not the served URL's (another site, DNS rebinding through another
  name, no Origin at all) is refused with 403 before any process starts.
- At most ``--max-sessions`` consoles run at once: one more is refused with 503, and a closed one
  frees its place.
- ``serve`` refuses an empty database (the first browser would create the administrator) and
  warns on stderr when it listens beyond loopback.

Skipped, with the reason, where Chromium or the playwright package is missing (the browser test).
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from mfa_tui.core.audit import list_events
from mfa_tui.core.services.users import UserService
from tests.helpers.browser import (
    PROJECT,
    TIMEOUT_SECONDS,
    ConsoleTab,
    Prepared,
    ServedConsole,
    die_with_parent,
    mfa_tui,
    open_browser,
    server_environment,
)
from tests.helpers.ports import free_port

pytestmark = pytest.mark.slow

MAX_SESSIONS = 2
# What no one may see before logging in: the demo users' names and addresses, any TOTP secret.
SENSITIVE = ("alice", "bob", "helpdesk", "@example.com", "otpauth")


@pytest.fixture
def served(database: Prepared, tmp_path: Path) -> Iterator[ServedConsole]:
    server = ServedConsole(database, tmp_path / "serve.log", "--max-sessions", str(MAX_SESSIONS))
    try:
        yield server
    finally:
        server.stop()


def snapshot(database: Prepared) -> tuple[list[dict[str, object]], int]:
    """Every user as ``users list --json`` shows them, and the number of audit events."""
    context = database.context()
    try:
        users = [user.as_json() for user in UserService(context).list()]
        with context.db.read() as session:
            return users, len(list_events(session))
    finally:
        context.close()


def fetch(url: str) -> tuple[int, dict[str, str], str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def test_a_tab_that_has_not_logged_in_reaches_nothing_and_closing_it_ends_its_process(
    database: Prepared, served: ServedConsole
) -> None:
    before = snapshot(database)
    page_status, headers, page = fetch(served.url)
    assert page_status == 200
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cache-Control"] == "no-store"
    for path in ("/", f"/download/{uuid.uuid4().hex}", "/static/"):
        status, _, body = fetch(served.url + path)
        assert status in (200, 404), (path, status)
        assert not [word for word in SENSITIVE if word in body.casefold()], (path, body[:2000])
    assert fetch(f"{served.url}/download/{uuid.uuid4().hex}")[0] == 404
    assert "http" not in page.replace(served.url, "")  # the page loads nothing from elsewhere

    with open_browser() as browser:
        tab = ConsoleTab(browser, served.url)
        tab.wait_for("Username", "Password", "Log in")
        [process] = served.wait_for_tabs(1)
        tab.focus()
        # The command palette offers every destination of a signed-in session; here it offers
        # none, only Textual's own commands.
        tab.press("Control+p")
        tab.wait_for("Search for commands", "Keys", "Quit", "Theme")
        for wanted in ("Administration", "Logs", "Server Settings", "Preferences", "Log out"):
            tab.type(wanted)
            tab.wait_for(wanted, "No matches found")
            tab.press(*["Backspace"] * len(wanted))
            tab.wait_for("Search for commands", "Keys")
        tab.press("Escape")
        tab.wait_for("Username", "Password", "Log in")
        assert not [word for word in SENSITIVE if word in tab.text().casefold()], tab.text()
        assert "Administration" not in tab.text()

        tab.close()
        assert served.wait_for_tabs(0) == []
        assert not Path(f"/proc/{process}").exists() or process not in served.tab_processes()
    assert snapshot(database) == before


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def handshake(
    http: aiohttp.ClientSession, served: ServedConsole, origin: str | None
) -> aiohttp.ClientWebSocketResponse | int:
    """An open websocket to the console, or the HTTP status that refused it."""
    try:
        return await http.ws_connect(f"{served.url}/ws?width=80&height=24", origin=origin)
    except aiohttp.WSServerHandshakeError as refused:
        return refused.status


async def test_a_websocket_from_another_origin_is_refused_before_any_process_starts(
    served: ServedConsole,
) -> None:
    port = served.port
    foreign = (
        "https://attacker.example",  # cross-site websocket hijacking
        f"http://rebound.attacker.example:{port}",  # DNS rebinding: another name, this address
        f"http://localhost:{port}",  # this machine, but not the served URL's origin
        f"https://127.0.0.1:{port}",  # another scheme
        "null",  # a sandboxed frame or a file
        None,  # no Origin at all
    )
    async with aiohttp.ClientSession() as http:
        for origin in foreign:
            assert await handshake(http, served, origin) == 403, origin
        assert served.tab_processes() == []

        accepted = await handshake(http, served, served.url)
        assert isinstance(accepted, aiohttp.ClientWebSocketResponse)
        await until(lambda: len(served.tab_processes()) == 1, "the accepted console's process")
        await accepted.close()
        await until(lambda: served.tab_processes() == [], "the closed console's process to end")


async def test_the_session_cap_holds_and_a_closed_session_frees_its_place(
    served: ServedConsole,
) -> None:
    async with aiohttp.ClientSession() as http:
        sessions = [await handshake(http, served, served.url) for _ in range(MAX_SESSIONS)]
        assert all(isinstance(s, aiohttp.ClientWebSocketResponse) for s in sessions), sessions
        await until(lambda: len(served.tab_processes()) == MAX_SESSIONS, "a process per session")

        assert await handshake(http, served, served.url) == 503
        assert len(served.tab_processes()) == MAX_SESSIONS  # the refused one started nothing

        first = sessions.pop(0)
        assert isinstance(first, aiohttp.ClientWebSocketResponse)
        await first.close()
        await until(lambda: len(served.tab_processes()) == MAX_SESSIONS - 1, "a freed place")
        again = await handshake(http, served, served.url)
        assert isinstance(again, aiohttp.ClientWebSocketResponse)
        await until(lambda: len(served.tab_processes()) == MAX_SESSIONS, "the new session")
        for websocket in [*sessions, again]:
            assert isinstance(websocket, aiohttp.ClientWebSocketResponse)
            await websocket.close()
        await until(lambda: served.tab_processes() == [], "every process to end")
    assert "Refused a console" in served.output()


def run_serve(database: Prepared, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        mfa_tui(database, "serve", *options),
        cwd=PROJECT,
        env=server_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_serve_refuses_an_empty_database_and_a_public_url_with_a_path(tmp_path: Path) -> None:
    empty = Prepared(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path / "secret.key", "", "", "")
    # Served, an empty database would offer "Create administrator" to the first browser.
    refused = run_serve(empty, "--port", str(free_port()))
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == (
        "mfa-tui: This database has no users: create the first administrator with 'init' first.\n"
    )
    bad_url = run_serve(empty, "--public-url", "https://mfa.example.com/console")
    assert bad_url.returncode == 2
    assert bad_url.stderr.startswith("mfa-tui: --public-url must be the address browsers open")
    # Every Origin would be refused: browsers never open a wildcard address.
    wildcard = run_serve(empty, "--host", "0.0.0.0", "--port", str(free_port()))
    assert wildcard.returncode == 2
    assert wildcard.stderr.startswith("mfa-tui: Serving on 0.0.0.0 needs --public-url")


def test_serving_beyond_loopback_warns_on_stderr(database: Prepared) -> None:
    port = free_port()
    options = ["--host", "0.0.0.0", "--port", str(port), "--public-url", f"http://127.0.0.1:{port}"]
    process = subprocess.Popen(
        mfa_tui(database, "serve", *options),
        cwd=PROJECT,
        env=server_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=die_with_parent,
    )
    try:
        assert process.stderr is not None
        warning = process.stderr.readline()  # printed before it listens
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert warning.startswith(
        "mfa-tui: warning: serving on 0.0.0.0, which other machines can reach."
    )
    assert "TLS and an authenticating reverse proxy" in warning
