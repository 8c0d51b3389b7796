"""SMS through an HTTP gateway speaking the Twilio Messages API, or a carrier's email-to-SMS gateway.

Twilio: ``POST {sms.base_url}/2010-04-01/Accounts/{sms.account_sid}/Messages.json`` with HTTP basic
auth (account SID, auth token) and the form fields To, From and Body; 201 Created is success.
Carrier: an email to ``{national number}@{sms.carrier_domain}`` through the SMTP settings.
Every failure becomes ``ProviderUnavailable`` with one sentence an administrator can act on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from mfa_tui.core.delivery.email import send_email
from mfa_tui.core.factors import ProviderUnavailable
from mfa_tui.core.settings import Settings
from mfa_tui.core.text import printable

if TYPE_CHECKING:
    import httpx


def send_sms(settings: Settings, to: str, body: str) -> None:
    """Send ``body`` to the E.164 number ``to``, or raise ProviderUnavailable saying why not."""
    if settings["sms.mode"] == "carrier":
        send_email(settings, carrier_address(settings, to), "", body)
        return
    _send_twilio(settings, to, body)


def carrier_address(settings: Settings, number: str) -> str:
    """Carriers' email-to-SMS gateways take the national number: ``4155550123@txt.example``."""
    import phonenumbers  # imported when used: every factor module loads at start-up

    domain = settings["sms.carrier_domain"]
    if not domain:
        raise ProviderUnavailable(
            "SMS by carrier gateway is not set up: an administrator sets sms.carrier_domain "
            "in Server Settings."
        )
    national = str(phonenumbers.parse(number).national_number)
    return f"{national}@{domain}"


def messages_url(settings: Settings) -> str:
    base = settings["sms.base_url"].rstrip("/")
    sid = quote(settings["sms.account_sid"], safe="")
    return f"{base}/2010-04-01/Accounts/{sid}/Messages.json"


def _send_twilio(settings: Settings, to: str, body: str) -> None:
    sid, token, sender = (
        settings["sms.account_sid"],
        settings["sms.auth_token"],
        settings["sms.from"],
    )
    if not (settings["sms.base_url"] and sid and token and sender):
        raise ProviderUnavailable(
            "SMS delivery is not set up: an administrator sets the gateway URL, account SID, "
            "auth token and sender in Server Settings."
        )
    import httpx  # imported when used: every factor module loads at start-up

    timeout = settings["sms.timeout"]
    where = f"the SMS gateway at {urlsplit(settings['sms.base_url']).netloc}"
    gateway = where[0].upper() + where[1:]
    try:
        response = httpx.post(
            messages_url(settings),
            auth=(sid, token),
            data={"To": to, "From": sender, "Body": body},
            timeout=timeout,
            follow_redirects=False,
        )
    except httpx.TimeoutException:
        raise ProviderUnavailable(
            f"{gateway} did not answer within {timeout:g} s; try again later."
        ) from None
    except httpx.HTTPError as error:
        raise ProviderUnavailable(
            f"Could not reach {where} ({printable(str(error))[:120] or type(error).__name__}); "
            "check sms.base_url."
        ) from None
    if response.status_code in (200, 201):
        return
    if response.status_code in (401, 403):
        raise ProviderUnavailable(
            f"{gateway} refused the account SID or auth token (HTTP {response.status_code}): "
            "check sms.account_sid and sms.auth_token."
        )
    if 400 <= response.status_code < 500:
        raise ProviderUnavailable(
            f"{gateway} refused the message (HTTP {response.status_code}"
            f"{_gateway_reason(response)}): check the phone number and sms.from."
        )
    raise ProviderUnavailable(
        f"{gateway} failed (HTTP {response.status_code}{_gateway_reason(response)}); "
        "try again later."
    )


def _gateway_reason(response: httpx.Response) -> str:
    """Twilio's error body carries a ``message``; shown shortened and escaped."""
    try:
        message = response.json().get("message")
    except (ValueError, AttributeError):
        return ""
    return f": {printable(str(message))[:120]}" if message else ""
