"""A local stand-in for Duo's Auth API v2, over HTTPS on 127.0.0.1, checking Duo's request signature.

It speaks what ``duo_client`` speaks: every request carries ``Date`` and an ``Authorization: Basic
base64(ikey:hex HMAC-SHA512)`` over the canonical request (signature version 5: date, method,
host, path, the sorted query parameters, the SHA-512 of the JSON body and of the ``X-Duo-*``
headers). A request whose signature, key or date is wrong gets Duo's 401 answer. It answers
``/auth/v2/check``, ``/auth/v2/preauth`` (auth / enroll / allow / deny) and ``/auth/v2/auth``
(push: allow / deny / timeout; passcode: single use), and can fail on purpose (an HTTP status,
or a delay longer than the client's timeout).

The certificate is self-signed for ``localhost`` and made fresh with ``cryptography``; the factor
trusts it through the ``duo.ca_file`` setting, so certificate checks stay on.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from cryptography import x509

from tests.helpers.certificates import self_signed_certificate, server_context
from tests.helpers.quiet_http import QuietHTTPServer

MAX_CLOCK_SKEW = 300  # seconds, like Duo


def phone(device_id: str, name: str, *, push: bool = True) -> dict[str, Any]:
    """A device as preauth lists it."""
    capabilities = ["auto", "push", "sms", "mobile_otp"] if push else ["sms", "phone"]
    return {
        "device": device_id,
        "type": "phone",
        "number": "XXX-XXX-" + device_id[-4:],
        "name": "",
        "display_name": name,
        "capabilities": capabilities,
    }


@dataclass
class DuoUser:
    result: str = "auth"  # what preauth says: auth | enroll | allow | deny
    devices: list[dict[str, Any]] = field(default_factory=list)
    passcodes: set[str] = field(default_factory=set)  # each accepted once
    push_answer: str = "allow"  # allow | deny | timeout (not answered within Duo's minute)
    status_msg: str = ""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: dict[str, str]
    signed: bool  # the signature, key and date were right


@dataclass
class DuoStandIn:
    host: str  # "localhost:PORT", as the API host setting names it
    ikey: str
    skey: str
    ca_file: Path
    users: dict[str, DuoUser] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    fail_status: int | None = None  # answer every request with this HTTP status
    delay: float = 0.0  # wait this long before answering (to outlast the client's timeout)
    released: threading.Event = field(default_factory=threading.Event)

    def settings(self) -> dict[str, str]:
        """The Duo settings that point the factor here (as ``settings set`` takes them)."""
        return {
            "duo.api_host": self.host,
            "duo.integration_key": self.ikey,
            "duo.secret_key": self.skey,
            "duo.ca_file": str(self.ca_file),
        }

    def calls(self, path: str) -> list[Request]:
        return [request for request in self.requests if request.path == path]

    # The Auth API ----------------------------------------------------------------------------------

    def answer(self, method: str, path: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if path == "/auth/v2/check" and method == "GET":
            return 200, _ok({"time": int(time.time())})
        if path == "/auth/v2/preauth" and method == "POST":
            return self._preauth(params)
        if path == "/auth/v2/auth" and method == "POST":
            return self._auth(params)
        return 404, _fail(40401, "Resource not found")

    def _preauth(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if not params.get("username"):
            return 400, _fail(40002, "Invalid request parameters", "username")
        user = self.users.get(params["username"])
        if user is None or user.result == "enroll":
            return 200, _ok(
                {
                    "result": "enroll",
                    "status_msg": "Enroll an authentication device to proceed",
                    "enroll_portal_url": f"https://{self.host}/portal?code=abc",
                }
            )
        if user.result == "auth":
            return 200, _ok(
                {"result": "auth", "status_msg": "Account is active", "devices": user.devices}
            )
        message = user.status_msg or (
            "Allowing unknown user" if user.result == "allow" else "Access denied"
        )
        return 200, _ok({"result": user.result, "status_msg": message})

    def _auth(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        user = self.users.get(params.get("username", ""))
        factor = params.get("factor")
        if user is None or factor not in ("push", "passcode") or params.get("async") != "0":
            return 400, _fail(40002, "Invalid request parameters", "username")
        if user.result != "auth":
            return 200, _ok(_result("deny", "deny", "Access denied"))
        if factor == "passcode":
            passcode = params.get("passcode", "")
            if passcode in user.passcodes:
                user.passcodes.discard(passcode)
                return 200, _ok(_result("allow", "allow", "Success. Logging you in..."))
            return 200, _ok(_result("deny", "deny", "Incorrect passcode. Please try again."))
        known = {d["device"] for d in user.devices if "push" in d["capabilities"]}
        if params.get("device") not in known | {"auto"}:
            return 400, _fail(40002, "Invalid request parameters", "device")
        return 200, _ok(
            {
                "allow": _result("allow", "allow", "Success. Logging you in..."),
                "deny": _result("deny", "deny", "Login request denied."),
                "timeout": _result("deny", "timeout", "Login timed out."),
            }[user.push_answer]
        )

    # The signature ---------------------------------------------------------------------------------

    def signed(
        self, method: str, path: str, query: str, body: bytes, headers: dict[str, str]
    ) -> bool:
        authorization = headers.get("authorization", "")
        if not authorization.startswith("Basic "):
            return False
        try:
            ikey, signature = base64.b64decode(authorization[6:]).decode().split(":", 1)
            sent_at = email.utils.parsedate_to_datetime(headers["date"])
        except (ValueError, KeyError, TypeError):
            return False
        if abs(time.time() - sent_at.timestamp()) > MAX_CLOCK_SKEW:
            return False
        params = urllib.parse.parse_qs(query, keep_blank_values=True)
        duo_headers = {name: value for name, value in headers.items() if name.startswith("x-duo-")}
        canonical = "\n".join(
            [
                headers["date"],
                method.upper(),
                self.host.rpartition(":")[0].lower(),  # duo_client signs the name, not the port
                path,
                _canon_params(params),
                hashlib.sha512(body).hexdigest(),
                hashlib.sha512(
                    "\x00".join(
                        part for name in sorted(duo_headers) for part in (name, duo_headers[name])
                    ).encode()
                ).hexdigest(),
            ]
        )
        expected = hmac.new(self.skey.encode(), canonical.encode(), hashlib.sha512).hexdigest()
        return hmac.compare_digest(ikey, self.ikey) and hmac.compare_digest(signature, expected)


def _canon_params(params: dict[str, list[str]]) -> str:
    """Duo's (OAuth 1.0 style) parameter string: quoted, sorted by key, then by value."""
    pairs = []
    for key, values in sorted((urllib.parse.quote(k, "~"), v) for k, v in params.items()):
        for value in sorted(urllib.parse.quote(v, "~") for v in values):
            pairs.append(f"{key}={value}")
    return "&".join(pairs)


def _ok(response: dict[str, Any]) -> dict[str, Any]:
    return {"stat": "OK", "response": response}


def _fail(code: int, message: str, detail: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"stat": "FAIL", "code": code, "message": message}
    if detail:
        body["message_detail"] = detail
    return body


def _result(result: str, status: str, message: str) -> dict[str, str]:
    return {"result": result, "status": status, "status_msg": message}


def _handler(duo: DuoStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet in test output
            return

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            signed = duo.signed(self.command, url.path, url.query, body, headers)
            params = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
            if body:
                params.update({k: str(v) for k, v in json.loads(body).items()})
            duo.requests.append(Request(self.command, url.path, params, signed))
            if duo.delay:
                duo.released.wait(duo.delay)
            if duo.fail_status is not None:
                status, answer = (
                    duo.fail_status,
                    _fail(duo.fail_status * 100, "Service unavailable"),
                )
            elif not signed:
                status, answer = 401, _fail(40103, "Invalid signature in request credentials")
            else:
                status, answer = duo.answer(self.command, url.path, params)
            data = json.dumps(answer).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up waiting (a timeout test)
                pass

    return Handler


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for ``localhost``: (certificate PEM, private key PEM)."""
    return self_signed_certificate(folder, "duo", "localhost", x509.DNSName("localhost"))


@contextmanager
def running_duo(folder: Path) -> Iterator[DuoStandIn]:
    """The stand-in on a free port of 127.0.0.1 in a thread; stopped (and any wait released) after."""
    cert_file, key_file = make_certificate(folder)
    context = server_context(cert_file, key_file)
    duo = DuoStandIn(
        host="",
        ikey="DI" + secrets.token_hex(9).upper(),
        skey=secrets.token_urlsafe(30),
        ca_file=cert_file,
    )
    server = QuietHTTPServer(("127.0.0.1", 0), _handler(duo))
    server.daemon_threads = True
    server.block_on_close = False
    server.socket = context.wrap_socket(
        server.socket, server_side=True, do_handshake_on_connect=False
    )
    duo.host = f"localhost:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield duo
    finally:
        duo.released.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
