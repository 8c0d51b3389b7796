"""Field rules shared by the forms, the CLI and CSV import: each failure is one sentence."""

from __future__ import annotations

import re

from mfa_tui.core.errors import InputError
from mfa_tui.core.kinds import MFA_TYPE_LABELS, MfaType, Role
from mfa_tui.core.text import has_control_characters

_USERNAME = re.compile(r"^[\w][\w.@+-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE_SEPARATORS = re.compile(r"[\s().-]")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def username(value: str) -> str:
    text = value.strip()
    if not text:
        raise InputError("The username is empty: enter one.")
    if not _USERNAME.match(text):
        raise InputError(
            f"'{text[:64]}' is not a valid username: use up to 64 letters, digits and . _ @ + -, "
            "starting with a letter or digit."
        )
    return text


def display_name(value: str | None) -> str | None:
    text = (value or "").strip()
    if not text:
        return None
    if len(text) > 128:
        raise InputError("The display name is too long: 128 characters at most.")
    if has_control_characters(text):
        raise InputError("The display name contains control characters: remove them.")
    return text


def email(value: str | None) -> str | None:
    text = (value or "").strip()
    if not text:
        return None
    if len(text) > 254 or not _EMAIL.match(text) or has_control_characters(text):
        raise InputError(
            f"'{text[:80]}' is not a valid email address: use the form name@example.com."
        )
    return text


def phone(value: str | None) -> str | None:
    text = (value or "").strip()
    if not text:
        return None
    import phonenumbers  # 80 ms to import: only when a number is checked

    compact = _PHONE_SEPARATORS.sub("", text)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    problem = f"'{text[:40]}' is not a phone number in international form: use e.g. +14155550123."
    if not _E164.match(compact):
        raise InputError(problem)
    try:
        number = phonenumbers.parse(compact, None)
    except phonenumbers.NumberParseException:
        raise InputError(problem) from None
    if not phonenumbers.is_valid_number(number):
        raise InputError(
            f"'{text[:40]}' is not a valid phone number for its country code: check the digits."
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def role(value: str) -> str:
    text = value.strip().lower()
    if text not in {r.value for r in Role}:
        raise InputError(f"'{value}' is not a role: use user, helpdesk or admin.")
    return text


def mfa_type(value: str) -> str:
    text = value.strip().lower()
    if text not in {t.value for t in MfaType}:
        names = ", ".join(t.value for t in MfaType)
        raise InputError(f"'{value}' is not an MFA type: use one of {names}.")
    return text


def supported_mfa_type(value: str, supported: tuple[str, ...]) -> str:
    name = mfa_type(value)
    if name != MfaType.NONE and name not in supported:
        allowed = ", ".join(("none", *supported))
        raise InputError(
            f"{MFA_TYPE_LABELS[MfaType(name)]} is not supported on this server: use one of "
            f"{allowed}, or enable it with 'settings set mfa.supported'."
        )
    return name
