"""Yubikeys and a Yubico validation server, for tests: real OTPs, the real 2.0 wire protocol.

``SimulatedYubikey`` makes real Yubico OTPs (yubiotp: AES-128, CRC, modhex) with counters that go
up like a key's. ``YubicoStandin`` is a validation server on 127.0.0.1 (a free port, in a thread)
speaking the YubiCloud protocol 2.0: it checks the request signature, decrypts the OTP with the
keys it knows, refuses a replay (counters must go up) with REPLAYED_OTP, and signs its answer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlparse

from yubiotp.modhex import modhex
from yubiotp.otp import CRCError, YubiKey, decode_otp, encode_otp

from tests.helpers.quiet_http import QuietHTTPServer


@dataclass
class SimulatedYubikey:
    """One key: a modhex public id, an AES key and a private id; ``touch()`` is a button press."""

    public_id: str = field(default_factory=lambda: modhex(secrets.token_bytes(6)).decode())
    aes_key: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    private_id: bytes = field(default_factory=lambda: secrets.token_bytes(6))
    usage: int = 1

    def __post_init__(self) -> None:
        self._device = YubiKey(self.private_id, self.usage)

    @property
    def aes_key_hex(self) -> str:
        return self.aes_key.hex()

    @property
    def private_id_hex(self) -> str:
        return self.private_id.hex()

    def touch(self) -> str:
        return encode_otp(self._device.generate(), self.aes_key, self.public_id.encode()).decode()

    def plug_in_again(self) -> None:
        """A new power-up: the usage counter goes up and the session counter starts again."""
        self._device = YubiKey(self.private_id, self._device.session + 1)

    def enrollment_fields(self) -> dict[str, str]:
        return {"aes_key": self.aes_key_hex, "private_id": self.private_id_hex}


def sign(params: dict[str, str], key: bytes) -> str:
    message = "&".join(f"{name}={params[name]}" for name in sorted(params))
    return base64.b64encode(hmac.new(key, message.encode(), hashlib.sha1).digest()).decode()


@dataclass
class YubicoStandin:
    """The validation server's state; its knobs make it misbehave the ways a test needs."""

    client_id: str = "4711"
    api_key: bytes = field(default_factory=lambda: secrets.token_bytes(20))
    keys: dict[str, SimulatedYubikey] = field(default_factory=dict)
    url: str = ""
    # Misbehaviours: sign answers with another key, or answer with another nonce.
    answer_key: bytes | None = None
    answer_nonce: str | None = None
    requests: list[dict[str, str]] = field(default_factory=list)
    _seen: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def api_key_b64(self) -> str:
        return base64.b64encode(self.api_key).decode()

    def register(self, key: SimulatedYubikey) -> SimulatedYubikey:
        self.keys[key.public_id] = key
        return key

    def answer(self, query: dict[str, str]) -> dict[str, str]:
        with self._lock:
            self.requests.append(query)
            status, extra = self._status(query)
        answer = {
            "t": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ0000"),
            "otp": query.get("otp", ""),
            "nonce": self.answer_nonce or query.get("nonce", ""),
            "sl": "100",
            "status": status,
            **extra,
        }
        answer["h"] = sign(answer, self.answer_key or self.api_key)
        return answer

    def _status(self, query: dict[str, str]) -> tuple[str, dict[str, str]]:
        if any(name not in query for name in ("id", "otp", "nonce")):
            return "MISSING_PARAMETER", {}
        if query["id"] != self.client_id:
            return "NO_SUCH_CLIENT", {}
        unsigned = {name: value for name, value in query.items() if name != "h"}
        if not hmac.compare_digest(query.get("h", ""), sign(unsigned, self.api_key)):
            return "BAD_SIGNATURE", {}
        otp = query["otp"]
        key = self.keys.get(otp[:-32])
        if key is None:
            return "BAD_OTP", {}
        try:
            _, token = decode_otp(otp.encode(), key.aes_key)
        except (CRCError, ValueError):
            return "BAD_OTP", {}
        if token.uid != key.private_id:
            return "BAD_OTP", {}
        counter = token.session * 256 + token.counter
        if counter <= self._seen.get(key.public_id, -1):
            return "REPLAYED_OTP", {}
        self._seen[key.public_id] = counter
        extra = {}
        if query.get("timestamp") == "1":
            extra = {
                "timestamp": str(token.timestamp),
                "sessioncounter": str(token.session),
                "sessionuse": str(token.counter),
            }
        return "OK", extra


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path != "/wsapi/2.0/verify":
            self.send_error(404)
            return
        answer = self.server.standin.answer(dict(parse_qsl(url.query)))
        body = "".join(f"{name}={value}\r\n" for name, value in answer.items()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(QuietHTTPServer):
    standin: YubicoStandin


@contextmanager
def running_standin() -> Iterator[YubicoStandin]:
    """A stand-in server on a free port of 127.0.0.1, stopped on exit."""
    server = _Server(("127.0.0.1", 0), _Handler)
    standin = YubicoStandin()
    server.standin = standin
    standin.url = f"http://127.0.0.1:{server.server_address[1]}/wsapi/2.0/verify"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield standin
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port_url(port: int) -> str:
    """The validation URL on a loopback ``port`` that refuses connections (``refused_port``)."""
    return f"http://127.0.0.1:{port}/wsapi/2.0/verify"
