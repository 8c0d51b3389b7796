"""A real SMTP server for tests (aiosmtpd) on 127.0.0.1, a free port, in its own thread.

``smtp_server(security=...)`` serves plain SMTP, STARTTLS or implicit TLS (a self-signed
certificate made here with ``cryptography``), optionally requiring a login; every message it
receives is kept, parsed, in ``SmtpServer.messages``.
"""

from __future__ import annotations

import email
import ipaddress
import re
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509

from tests.helpers.certificates import self_signed_certificate, server_context
from tests.helpers.ports import HOST, free_port

CODE = re.compile(r"code is (\d{6})")


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        body = self.message.get_body(("plain",))
        return body.get_content() if body is not None else ""

    @property
    def code(self) -> str:
        match = CODE.search(self.text)
        assert match, f"no code in the message: {self.text!r}"
        return match.group(1)


@dataclass
class SmtpServer:
    port: int
    security: str
    username: str | None = None
    password: str | None = None
    messages: list[Received] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def settings(self) -> dict[str, str]:
        """The ``settings set`` values that point mfa-tui at this server."""
        values = {
            "smtp.host": HOST,
            "smtp.port": str(self.port),
            "smtp.security": self.security,
            "smtp.from": "mfa@example.com",
            "smtp.verify_tls": "false",
            "smtp.timeout": "5",
        }
        if self.username:
            values["smtp.username"] = self.username
            values["smtp.password"] = self.password or ""
        return values

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """The messages once ``count`` have arrived (delivery ends before the client's QUIT)."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            assert time.monotonic() < deadline, f"{len(self.messages)} of {count} messages arrived"
            time.sleep(0.01)
        return list(self.messages)

    def last_code_to(self, address: str) -> str:
        for received in reversed(self.wait_for(1)):
            if address in received.recipients:
                return received.code
        raise AssertionError(f"no message to {address}")

    # aiosmtpd callbacks --------------------------------------------------------------------------

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=default)
        with self._lock:
            self.messages.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), message)  # type: ignore[arg-type]
            )
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.username
            and auth_data.password.decode() == self.password
        )
        if ok:
            self.logins.append(self.username or "")
        # handled=False: aiosmtpd then answers 535 itself (with the default it answers nothing).
        return AuthResult(success=ok, handled=False)


def self_signed_context(directory: Path) -> ssl.SSLContext:
    """A server TLS context with a new self-signed certificate for 127.0.0.1."""
    alt_name = x509.IPAddress(ipaddress.ip_address(HOST))
    return server_context(
        *self_signed_certificate(directory, "smtp", "mfa-tui test SMTP", alt_name)
    )


@contextmanager
def smtp_server(
    *,
    security: str = "none",
    username: str | None = None,
    password: str | None = None,
    cert_dir: Path | None = None,
) -> Iterator[SmtpServer]:
    """Serve SMTP until the block ends. ``security`` is none, starttls or tls (needs ``cert_dir``)."""
    server = SmtpServer(free_port(), security, username, password)
    kwargs: dict[str, Any] = {}
    if security in ("starttls", "tls"):
        assert cert_dir is not None, "TLS needs a directory for the certificate"
        context = self_signed_context(cert_dir)
        if security == "tls":
            kwargs["ssl_context"] = context
        else:
            kwargs.update(tls_context=context, require_starttls=True)
    if username:
        kwargs.update(
            authenticator=server.authenticate,
            auth_required=True,
            # Implicit TLS is not seen as TLS by aiosmtpd 1.4: it would then hide AUTH.
            auth_require_tls=security == "starttls",
        )
    controller = Controller(server, hostname=HOST, port=server.port, **kwargs)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()
