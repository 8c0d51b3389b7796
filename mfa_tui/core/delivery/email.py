"""Email through the SMTP settings: no encryption, STARTTLS or TLS, optional login, with a timeout.

Every failure becomes ``ProviderUnavailable`` with one sentence an administrator can act on.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from mfa_tui.core.factors import ProviderUnavailable
from mfa_tui.core.settings import Settings
from mfa_tui.core.text import printable


def send_email(settings: Settings, to: str, subject: str, body: str) -> None:
    """Send one plain-text message, or raise ProviderUnavailable saying why it could not go."""
    message = EmailMessage()
    sender = settings["smtp.from"] or settings["smtp.username"] or "mfa-tui@localhost"
    message["From"] = formataddr((settings["totp.issuer"], sender))
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(body)
    with SmtpSession(settings) as smtp:
        try:
            smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused:
            raise ProviderUnavailable(f"The SMTP server refused the address {to}.") from None
        except smtplib.SMTPSenderRefused:
            raise ProviderUnavailable(
                f"The SMTP server refused the sender {sender}: set smtp.from to an address it accepts."
            ) from None
        except (smtplib.SMTPException, OSError) as error:
            raise ProviderUnavailable(
                f"The SMTP server did not accept the message ({_reason(error)}); try again later."
            ) from None


class SmtpSession:
    """A connected, secured and (when a username is set) logged-in SMTP client."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client: smtplib.SMTP | None = None

    def __enter__(self) -> smtplib.SMTP:
        settings = self.settings
        host, port = settings["smtp.host"], settings["smtp.port"]
        security, timeout = settings["smtp.security"], settings["smtp.timeout"]
        if not host:
            raise ProviderUnavailable(
                "Email delivery is not set up: an administrator sets the SMTP host in Server Settings."
            )
        where = f"the SMTP server at {host}:{port}"
        server = f"The SMTP server at {host}:{port}"
        context = _tls_context(settings["smtp.verify_tls"])
        try:
            if security == "tls":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    host, port, timeout=timeout, context=context
                )
            else:
                client = smtplib.SMTP(host, port, timeout=timeout)
            self.client = client
            client.ehlo()
            if security == "starttls":
                if not client.has_extn("starttls"):
                    raise ProviderUnavailable(
                        f"{server} does not offer STARTTLS: set smtp.security to tls or none."
                    )
                client.starttls(context=context)
                client.ehlo()
            if settings["smtp.username"]:
                client.login(settings["smtp.username"], settings["smtp.password"])
        except ProviderUnavailable:
            self._close()
            raise
        except smtplib.SMTPAuthenticationError:
            self._close()
            raise ProviderUnavailable(
                f"{server} refused the username or password: check smtp.username and smtp.password."
            ) from None
        except smtplib.SMTPNotSupportedError:
            self._close()
            raise ProviderUnavailable(
                f"{server} does not accept a login: clear smtp.username, or use STARTTLS or TLS."
            ) from None
        except ssl.SSLCertVerificationError as error:
            self._close()
            raise ProviderUnavailable(
                f"The TLS certificate of {where} is not trusted ({error.verify_message}): "
                "install its CA, or set smtp.verify_tls to false."
            ) from None
        except ssl.SSLError as error:
            self._close()
            raise ProviderUnavailable(
                f"TLS with {where} failed ({_reason(error)}): check smtp.security and smtp.port."
            ) from None
        except (smtplib.SMTPException, OSError) as error:
            self._close()
            # A server that accepts the connection and then stays silent reaches us as smtplib's
            # SMTPServerDisconnected("... timed out"), raised while handling the TimeoutError.
            if isinstance(error, TimeoutError) or isinstance(error.__context__, TimeoutError):
                raise ProviderUnavailable(
                    f"{server} did not answer within {timeout:g} s; try again later."
                ) from None
            raise ProviderUnavailable(
                f"Could not reach {where} ({_reason(error)}); check smtp.host and smtp.port."
            ) from None
        return client

    def __exit__(self, *exc_info: object) -> None:
        if self.client is not None:
            try:
                self.client.quit()
            except (smtplib.SMTPException, OSError):
                self._close()

    def _close(self) -> None:
        if self.client is not None:
            self.client.close()


def _tls_context(verify: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _reason(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPResponseException):
        text = (
            error.smtp_error.decode("utf-8", "replace")
            if isinstance(error.smtp_error, bytes)
            else str(error.smtp_error)
        )
        return printable(f"{error.smtp_code} {' '.join(text.split())}")[:160]
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    return printable(getattr(error, "strerror", None) or str(error) or type(error).__name__)[:160]
