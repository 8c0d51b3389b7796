"""Duo: the Auth API (preauth, then a push to a device or a passcode), through ``duo_client``.

The person types ``push`` (the first device that takes a push), ``push 2`` (the second…) or a
passcode (Duo Mobile, a text message, a hardware token, a bypass code). Anything else, a backup
code for one, never leaves this computer. Duo keeps the passcodes single-use on its side.

Enrollment happens at Duo; here it is confirmed: preauth must say the user can authenticate
("auth"), then one successful push or passcode proves it.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mfa_tui.core.factors import (
    EnrollmentStart,
    FactorEnv,
    Proof,
    ProviderUnavailable,
    verifying_credential,
)
from mfa_tui.core.models import CredentialState, MfaCredential, User
from mfa_tui.core.text import printable

if TYPE_CHECKING:
    from mfa_tui.core.settings import Settings

# Duo holds a push request open until the person answers or its own 60-second limit passes.
PUSH_WAIT_SECONDS = 60
_PUSH = re.compile(r"^push\s*([1-9]\d?)?$")
# Duo Mobile and tokens: 6 or 8 digits, a text message 7, a bypass code 9; a Yubikey OTP is 44
# modhex characters. None of these can be a backup code (12 letters and digits).
# ASCII digits only: a full-width or Arabic-Indic "passcode" is never sent to Duo.
_PASSCODE = re.compile(r"^(\d{6,9}|[cbdefghijklnrtuv]{32,48})$", re.ASCII)


@dataclass(frozen=True)
class _Push:
    index: int  # 1-based, among the devices that take a push


@dataclass(frozen=True)
class _Passcode:
    value: str


@dataclass(frozen=True)
class _Device:
    id: str
    name: str


@dataclass(frozen=True)
class _Preauth:
    result: str  # auth | enroll | allow | deny
    message: str
    push_devices: tuple[_Device, ...] = ()
    enroll_url: str | None = None


class DuoFactor:
    type = "duo"
    label = "Duo"
    code_prompt = "Type push for a Duo Push, or a Duo passcode."

    def new_credential(
        self, env: FactorEnv, *, credential_id: str, user: User
    ) -> tuple[MfaCredential, EnrollmentStart]:
        # Nothing secret is kept here: Duo holds the devices. Duo is asked once the row is saved.
        credential = verifying_credential(env, credential_id, user, self.type)
        return credential, self.enrollment_view(env, credential, user)

    def enrollment_view(
        self, env: FactorEnv, credential: MfaCredential, user: User
    ) -> EnrollmentStart:
        return EnrollmentStart(
            credential_id=credential.id,
            instructions=f"Confirm {user.username}'s Duo account with one Duo Push or passcode.",
        )

    def challenge(self, env: FactorEnv, credential: MfaCredential, user: User) -> str | None:
        """Ask Duo which devices the user has and say how to choose one; nothing is sent yet."""
        pre = _preauth(_client(env.settings), user.username)
        return _describe(
            pre, user.username, enrolling=credential.state == CredentialState.VERIFYING
        )

    def verify(
        self, env: FactorEnv, credential: MfaCredential, user: User, code: str
    ) -> Proof | None:
        answer = _parse(code)
        if answer is None:
            return None
        client = _client(env.settings)
        pre = _preauth(client, user.username)
        enrolling = credential.state == CredentialState.VERIFYING
        if pre.result == "allow" and not enrolling:
            # Duo's administrator lets this user in without a second factor (bypass).
            return Proof()
        if pre.result == "deny" and not enrolling:
            return None  # Duo refuses this user: a failed attempt, like a wrong code
        if pre.result != "auth":
            # Not enrolled at Duo, or nothing to confirm: say so; it is not a wrong code.
            raise ProviderUnavailable(_describe(pre, user.username, enrolling=enrolling))
        if isinstance(answer, _Push):
            if not pre.push_devices:
                raise ProviderUnavailable(
                    "None of your Duo devices takes a push: type a passcode instead."
                )
            if answer.index > len(pre.push_devices):
                raise ProviderUnavailable(
                    f"There is no Duo device {answer.index}: {_choices(pre.push_devices)}"
                )
            device = pre.push_devices[answer.index - 1]
            client.timeout = float(env.settings["duo.timeout"] + PUSH_WAIT_SECONDS)
            result = _call(
                client,
                "auth",
                factor="push",
                username=user.username,
                device=device.id,
                type="mfa-tui setup" if enrolling else "mfa-tui login",  # shown in the push
            )
        else:
            result = _call(
                client, "auth", factor="passcode", username=user.username, passcode=answer.value
            )
        if not isinstance(result, dict) or result.get("result") not in ("allow", "deny"):
            raise ProviderUnavailable("Duo's answer was not understood; try again later.")
        # "deny" covers a refused push, an unanswered one (status "timeout") and a wrong passcode:
        # each counts as a failed attempt, so pushes cannot be sent without limit.
        return Proof() if result["result"] == "allow" else None

    def test_settings(self, env: FactorEnv, user: User) -> str:
        """Signed /auth/v2/check: the host answers and accepts the integration and secret keys."""
        _call(_client(env.settings), "check")
        return f"Duo at {env.settings['duo.api_host']} accepted the integration key and secret key."


def _parse(code: str) -> _Push | _Passcode | None:
    text = " ".join(code.strip().lower().split())
    push = _PUSH.match(text)
    if push:
        return _Push(int(push.group(1) or 1))
    compact = text.replace(" ", "")
    return _Passcode(compact) if _PASSCODE.match(compact) else None


def _client(settings: Settings) -> Any:
    host, ikey, skey = (
        settings["duo.api_host"],
        settings["duo.integration_key"],
        settings["duo.secret_key"],
    )
    if not (host and ikey and skey):
        raise ProviderUnavailable(
            "Duo is not set up: set the Duo API host, integration key and secret key "
            "in Server Settings."
        )
    import duo_client

    ca_file = settings["duo.ca_file"]
    if ca_file and not Path(ca_file).is_file():
        raise ProviderUnavailable(f"The Duo CA file {printable(ca_file)} cannot be read.")
    # Certificates are always verified: against Duo's own CAs, or the bundle an operator names.
    # "host:port" (a test server, a relay) is split: Duo signs the host name alone.
    name, _, port = host.rpartition(":") if re.search(r"^[^:]+:\d{1,5}$", host) else (host, "", "")
    return duo_client.Auth(
        ikey=ikey,
        skey=skey,
        host=name,
        port=int(port) if port else None,
        ca_certs=ca_file or None,
        timeout=settings["duo.timeout"],
        user_agent="mfa-tui",
    )


def _call(client: Any, method: str, **params: str) -> Any:
    """One Auth API call; every way it can fail becomes one sentence (ProviderUnavailable)."""
    host = printable(client.host + (f":{client.port}" if client.port else ""))
    try:
        return getattr(client, method)(**params)
    except TimeoutError:
        raise ProviderUnavailable(
            f"Duo at {host} did not answer within {client.timeout:g} s; try again later."
        ) from None
    except ssl.SSLError as error:
        raise ProviderUnavailable(
            f"The certificate of the Duo API host {host} could not be verified "
            f"({printable(getattr(error, 'reason', None) or type(error).__name__)})."
        ) from None
    except http.client.HTTPException as error:
        if type(error).__name__ == "InvalidCertificateException":
            raise ProviderUnavailable(
                f"The certificate of {host} is not for that host name; check duo.api_host."
            ) from None
        raise ProviderUnavailable(f"Duo at {host} sent an answer that could not be read.") from None
    except OSError as error:
        reason = "unknown host" if isinstance(error, socket.gaierror) else error.strerror
        raise ProviderUnavailable(
            f"Duo at {host} cannot be reached ({printable(reason or type(error).__name__)})."
        ) from None
    except RuntimeError as error:
        raise ProviderUnavailable(_http_failure(host, error)) from None


def _http_failure(host: str, error: RuntimeError) -> str:
    status = getattr(error, "status", None)
    if status == 401:
        return (
            f"Duo at {host} refused the request's signature: check the Duo integration key, "
            "secret key and this computer's clock."
        )
    if status == 429:
        return "Duo is refusing requests for now (too many); try again in a minute."
    if isinstance(status, int) and status >= 500:
        return f"Duo at {host} answered with an error (HTTP {status}); try again later."
    if status == 200:
        return "Duo's answer was not understood; try again later."
    detail = _fail_message(getattr(error, "data", b""))
    return f"Duo at {host} refused the request (HTTP {status}{': ' + detail if detail else ''})."


def _fail_message(data: object) -> str:
    try:
        body = json.loads(data.decode() if isinstance(data, bytes) else str(data))
        return printable(" ".join(str(body.get(k, "")) for k in ("message", "message_detail")))[
            :120
        ].strip()
    except (ValueError, AttributeError):
        return ""


def _preauth(client: Any, username: str) -> _Preauth:
    answer = _call(client, "preauth", username=username)
    if not isinstance(answer, dict) or answer.get("result") not in (
        "auth",
        "enroll",
        "allow",
        "deny",
    ):
        raise ProviderUnavailable("Duo's answer was not understood; try again later.")
    devices = tuple(
        _Device(str(device["device"]), _device_name(device))
        for device in answer.get("devices") or ()
        if isinstance(device, dict)
        and device.get("device")
        and "push" in (device.get("capabilities") or ())
    )
    url = answer.get("enroll_portal_url")
    return _Preauth(
        result=answer["result"],
        message=printable(str(answer.get("status_msg") or ""))[:160],
        push_devices=devices,
        enroll_url=printable(url)[:200]
        if isinstance(url, str) and url.startswith("https://")
        else None,
    )


def _device_name(device: dict[str, Any]) -> str:
    for key in ("display_name", "name", "number"):
        if device.get(key):
            return printable(str(device[key]))[:40]
    return "a phone"


def _choices(devices: tuple[_Device, ...]) -> str:
    if len(devices) == 1:
        return f"type push for a Duo Push to {devices[0].name}, or a passcode."
    listed = ", ".join(f"{n}: {device.name}" for n, device in enumerate(devices, start=1))
    others = "push 2 for device 2" if len(devices) == 2 else f"push 2 to push {len(devices)}"
    return f"your devices are {listed}. Type push for device 1, {others}, or a passcode."


def _describe(pre: _Preauth, username: str, *, enrolling: bool) -> str:
    """What Duo's preauth means for the person at the prompt, in one or two sentences."""
    if pre.result == "auth":
        if not pre.push_devices:
            return "Duo: none of your devices takes a push; type a passcode from Duo Mobile, a text message or a token."
        return "Duo: " + _choices(pre.push_devices)
    if pre.result == "enroll":
        where = (
            f" at {pre.enroll_url}"
            if pre.enroll_url
            else " (follow the link from your Duo administrator)"
        )
        return f"{username} is not enrolled with Duo yet: enroll with Duo first{where}, then type push here."
    if pre.result == "allow" and not enrolling:
        return f"Duo lets {username} in without a second factor for now (bypass): type push to continue."
    if pre.result == "allow":
        return (
            f"Duo lets {username} in without a second factor (bypass), so there is nothing to "
            "confirm: ask the Duo administrator to end the bypass, or choose another type."
        )
    reason = f" ({pre.message})" if pre.message else ""
    return f"Duo refuses {username}{reason}: ask your Duo administrator."
