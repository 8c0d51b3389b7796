"""An SMS gateway speaking the Twilio Messages API, for tests: HTTP on 127.0.0.1, a free port, a thread.

``POST /2010-04-01/Accounts/{sid}/Messages.json`` with HTTP basic auth (account SID, auth token)
and the form fields To, From and Body: 201 and Twilio's JSON on success, 401 with Twilio's error
JSON for wrong credentials. ``fail_with`` makes it answer another status (500…); ``delay`` makes
it answer late (for timeouts). Every accepted message is kept in ``messages``.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

from tests.helpers.quiet_http import QuietHTTPServer

CODE = re.compile(r"code is (\d{6})")
PATH = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages\.json$")


@dataclass
class Sms:
    to: str
    sender: str
    body: str

    @property
    def code(self) -> str:
        match = CODE.search(self.body)
        assert match, f"no code in the text: {self.body!r}"
        return match.group(1)


@dataclass
class TwilioStandin:
    account_sid: str = field(default_factory=lambda: "AC" + secrets.token_hex(16))
    auth_token: str = field(default_factory=lambda: secrets.token_hex(16))
    sender: str = "+14155550100"
    url: str = ""
    fail_with: int | None = None
    delay: float = 0.0
    messages: list[Sms] = field(default_factory=list)
    requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def settings(self) -> dict[str, str]:
        """The ``settings set`` values that point mfa-tui at this gateway."""
        return {
            "sms.mode": "twilio",
            "sms.base_url": self.url,
            "sms.account_sid": self.account_sid,
            "sms.auth_token": self.auth_token,
            "sms.from": self.sender,
            "sms.timeout": "1",
        }

    def last_code_to(self, number: str) -> str:
        for sms in reversed(self.messages):
            if sms.to == number:
                return sms.code
        raise AssertionError(f"no text message to {number}: {self.messages}")

    def answer(self, path: str, authorization: str, form: dict[str, str]) -> tuple[int, dict]:
        with self._lock:
            self.requests += 1
        if self.delay:
            time.sleep(self.delay)
        match = PATH.match(path)
        if match is None:
            return 404, {
                "code": 20404,
                "message": "The requested resource was not found",
                "status": 404,
            }
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if match.group(1) != self.account_sid or authorization != f"Basic {expected}":
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        if self.fail_with is not None:
            return self.fail_with, {
                "code": 20500,
                "message": "Internal Server Error",
                "status": self.fail_with,
            }
        missing = [name for name in ("To", "From", "Body") if not form.get(name)]
        if missing:
            return 400, {"code": 21604, "message": f"A '{missing[0]}' is required.", "status": 400}
        with self._lock:
            self.messages.append(Sms(form["To"], form["From"], form["Body"]))
        return 201, {
            "sid": "SM" + secrets.token_hex(16),
            "account_sid": self.account_sid,
            "to": form["To"],
            "from": form["From"],
            "body": form["Body"],
            "status": "queued",
        }


@contextmanager
def twilio_standin(**knobs: object) -> Iterator[TwilioStandin]:
    standin = TwilioStandin(**knobs)  # type: ignore[arg-type]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            fields = parse_qs(self.rfile.read(length).decode())
            form = {name: values[0] for name, values in fields.items()}
            status, body = standin.answer(self.path, self.headers.get("Authorization", ""), form)
            payload = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up (a timeout test)
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = QuietHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.block_on_close = False  # a late answer (the timeout test) must not hold up the end
    standin.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield standin
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
