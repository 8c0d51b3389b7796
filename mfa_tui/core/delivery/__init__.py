"""Sending one-time codes to people: by email (SMTP) or by SMS (a Twilio-style HTTP gateway, or a
carrier's email-to-SMS gateway through SMTP).

``codes`` issues, throttles and consumes the codes (stored only as keyed hashes); ``email`` and
``sms`` deliver them, with timeouts, raising ``ProviderUnavailable`` with one sentence on failure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mfa_tui.core.settings import Settings


def email_ready(settings: Settings) -> bool:
    """Email can be sent: an SMTP server is set."""
    return bool(settings["smtp.host"])


def sms_ready(settings: Settings) -> bool:
    """SMS can be sent: the gateway's account, token and sender, or (carrier mode) a carrier
    domain and the SMTP server that mails to it."""
    if settings["sms.mode"] == "carrier":
        return bool(settings["sms.carrier_domain"]) and email_ready(settings)
    return all(settings[key] for key in ("sms.account_sid", "sms.auth_token", "sms.from"))


def masked_address(address: str) -> str:
    """Enough of an email address for its owner to recognise it: ``al…@example.com``."""
    local, _, domain = address.partition("@")
    return f"{local[:2]}…@{domain}" if len(local) > 2 else f"{local[:1]}…@{domain}"


def masked_phone(number: str) -> str:
    """The last digits of a phone number: ``+1…0123``."""
    return f"{number[:2]}…{number[-4:]}" if len(number) > 6 else number
