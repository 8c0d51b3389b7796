"""The web server of ``mfa-tui serve``: textual-serve's ``Server`` with the guards it lacks.

textual-serve starts an app process for every websocket and checks nothing itself. Here:

- a websocket upgrade whose ``Origin`` is not the public URL's origin is refused (403), so a page
  on another site, or a DNS-rebinding name for this address, cannot open a console;
- at most ``max_sessions`` consoles run at once; one more is refused (503) before any process starts;
- every tab's console ends itself after ``idle_minutes`` without a key press or a click;
- every response forbids framing, sniffing, referrers and (but for the static files) caching,
  and the page loads nothing from another site (its own template, without the web font link).

Authentication stays in the console: each tab starts on the login screen and needs the password
and the second factor, like a terminal.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import shlex
import sys
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import hdrs, web
from textual_serve.server import Server

from mfa_tui.core.config import DATABASE_ENV_VAR, KEY_FILE_ENV_VAR, Config
from mfa_tui.core.errors import InputError

log = logging.getLogger("mfa-tui.serve")

TEMPLATES = Path(__file__).parent / "templates"
DEFAULT_PORTS = {"http": 80, "https": 443}


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host`` (``localhost`` or a loopback address)."""
    if host.casefold() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def origin_of(url: str) -> str:
    """The web origin (``scheme://host[:port]``, default port left out) of a URL or an Origin header.

    Raises ValueError for anything that is not an http(s) address with a host.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.casefold()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"not an http(s) address: {url!r}")
    port = parts.port or DEFAULT_PORTS[scheme]
    host = parts.hostname.casefold()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" + ("" if port == DEFAULT_PORTS[scheme] else f":{port}")


def public_url_for(host: str, port: int, url: str | None) -> str:
    """The address browsers open: ``--public-url`` (checked: a site's root) or ``http://host:port``.

    Raises InputError for a URL that is not an http(s) site's root.
    """
    if url is None:
        shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
        return origin_of(f"http://{shown}:{port}")
    problem = (
        "--public-url must be the address browsers open, such as https://mfa.example.com, "
        "with no path, query or user name"
    )
    try:
        origin = origin_of(url)
        parts = urlsplit(url.strip())
    except ValueError:
        raise InputError(f"{problem}; got {url!r}.") from None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        # textual-serve's page asks for downloads at the site's root, whatever the path.
        raise InputError(f"{problem}; got {url!r}.")
    return origin


class ConsoleServer(Server):
    """textual-serve, each tab running ``python -m mfa_tui.serve.tab``, with the checks above.

    Every tab's console opens the database and key ``config`` names; ``public_url`` comes from
    ``public_url_for``.
    """

    def __init__(
        self,
        config: Config,
        *,
        host: str,
        port: int,
        public_url: str,
        max_sessions: int,
        idle_minutes: int,
    ) -> None:
        tab = [sys.executable, "-m", "mfa_tui.serve.tab", "--idle-minutes", str(idle_minutes)]
        # "exec": textual-serve runs the command through a shell; the tab's process is the app.
        super().__init__(
            f"exec {shlex.join(tab)}",
            host=host.strip("[]"),
            port=port,
            title="mfa-tui",
            public_url=public_url,
            templates_path=TEMPLATES,
        )
        self.config = config
        self.allowed_origin = origin_of(public_url)
        self.max_sessions = max_sessions
        self.idle_minutes = idle_minutes
        # The handler task of every open console, to count them and to end them on shutdown.
        self._consoles: set[asyncio.Task[object]] = set()

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        aiohttp_jinja2.get_env(app).globals["idle_minutes"] = self.idle_minutes
        app.on_response_prepare.append(self._security_headers)
        return app

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        origin = request.headers.get(hdrs.ORIGIN, "")
        if not self._origin_allowed(origin):
            log.warning(
                "Refused a console for origin %r: only pages from %s may open one.",
                origin,
                self.allowed_origin,
            )
            raise web.HTTPForbidden(
                text=f"Refused: only pages from {self.allowed_origin} may open a console.\n"
            )
        if len(self._consoles) >= self.max_sessions:
            log.warning("Refused a console: %d are open, the most allowed.", len(self._consoles))
            raise web.HTTPServiceUnavailable(
                text=f"Refused: {self.max_sessions} consoles are open, the most this server "
                "allows. Close one and try again.\n"
            )
        # Counted before the first await, so two upgrades at once cannot both take the last place.
        task = asyncio.current_task()
        assert task is not None
        self._consoles.add(task)
        try:
            return await super().handle_websocket(request)
        finally:
            self._consoles.discard(task)

    def _origin_allowed(self, origin: str) -> bool:
        try:
            return origin_of(origin) == self.allowed_origin
        except ValueError:  # missing, "null", or not an http(s) origin
            return False

    async def _security_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        websocket = self.allowed_origin.replace("http", "ws", 1)
        headers = response.headers
        headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self' 'unsafe-inline'; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; "
            f"connect-src 'self' {websocket}; frame-ancestors 'none'; base-uri 'none'; "
            "form-action 'none'"
        )
        headers["X-Frame-Options"] = "DENY"
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "no-referrer"
        if not request.path.startswith("/static/"):
            headers["Cache-Control"] = "no-store"

    def serve(self, debug: bool = False) -> None:
        """Serve until Ctrl+C or SIGTERM."""
        # To the tabs' processes through their environment: a database URL may hold a password.
        os.environ[DATABASE_ENV_VAR] = self.config.database_url
        os.environ[KEY_FILE_ENV_VAR] = str(self.config.key_file)
        super().serve(debug)

    async def on_shutdown(self, app: web.Application) -> None:
        # Cancelled, textual-serve's handler tells its app to quit and waits for it; left alone,
        # an open tab would hold the shutdown until aiohttp's own timeout.
        consoles = list(self._consoles)
        for task in consoles:
            task.cancel()
        await asyncio.gather(*consoles, return_exceptions=True)

    async def on_startup(self, app: web.Application) -> None:
        print(
            f"mfa-tui serve: the console is at {self.public_url} "
            f"(at most {self.max_sessions} at once; idle ones end after {self.idle_minutes} "
            "minutes). Ctrl+C stops.",
            flush=True,
        )
