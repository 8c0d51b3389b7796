"""Server settings: every key, its type, its default and its validation, in one place.

``Settings`` is the typed object the rest of the code reads (``settings.lockout_attempts``);
``SETTING_SPECS`` maps the dotted CLI keys (``lockout.attempts``) to it. Secret values are stored
encrypted and shown masked.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from mfa_tui.core.errors import InputError
from mfa_tui.core.kinds import MFA_TYPE_LABELS, MfaType
from mfa_tui.core.text import has_control_characters

USAGE_CHOICES = ("skipped", "optional", "required")
USAGE_LABELS = {"skipped": "Skipped", "optional": "Optional per user", "required": "Required"}
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


@dataclass(frozen=True)
class SettingSpec:
    key: str
    kind: str  # "str" | "int" | "bool" | "choice" | "types"
    default: Any
    description: str
    secret: bool = False
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    check: Callable[[Any], str | None] | None = None

    @property
    def attribute(self) -> str:
        return self.key.replace(".", "_")

    def parse(self, raw: str) -> Any:
        """Turn the text a person typed into the typed value, or say in one sentence what is wrong."""
        text = raw.strip()
        if self.kind == "int":
            try:
                value: Any = int(text)
            except ValueError:
                raise InputError(f"{self.key} takes a whole number, not '{_echo(raw)}'.") from None
            if self.minimum is not None and value < self.minimum:
                raise InputError(f"{self.key} must be at least {self.minimum}.")
            if self.maximum is not None and value > self.maximum:
                raise InputError(f"{self.key} must be at most {self.maximum}.")
        elif self.kind == "bool":
            if text.lower() not in _TRUE | _FALSE:
                raise InputError(f"{self.key} takes true or false, not '{_echo(raw)}'.")
            value = text.lower() in _TRUE
        elif self.kind == "choice":
            value = text.lower() if self.key != "totp.algorithm" else text.upper()
            if value not in self.choices:
                raise InputError(
                    f"{self.key} is one of {', '.join(self.choices)}, not '{_echo(raw)}'."
                )
        elif self.kind == "types":
            value = tuple(
                dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip())
            )
            for name in value:
                if name not in self.choices:
                    raise InputError(
                        f"'{name}' is not an MFA type for {self.key}; use {', '.join(self.choices)}."
                    )
        else:
            value = text
            if len(value) > 512:
                raise InputError(f"{self.key} is too long (512 characters at most).")
            # Shown in the console and sent to servers: never anything a terminal acts on.
            if has_control_characters(value):
                raise InputError(f"{self.key} contains control characters: remove them.")
        problem = self.check(value) if self.check else None
        if problem:
            raise InputError(problem if self.key in problem else f"{self.key}: {problem}")
        return value

    def show(self, value: Any) -> str:
        if self.secret:
            return "********" if value else ""
        if self.kind == "bool":
            return "true" if value else "false"
        if self.kind == "types":
            return ",".join(value)
        return str(value)


def _echo(raw: str, limit: int = 40) -> str:
    """What was typed, as much as a one-line message can repeat."""
    return raw if len(raw) <= limit else raw[: limit - 1] + "…"


def _check_issuer(value: str) -> str | None:
    if not value or ":" in value:
        return "totp.issuer must be non-empty and must not contain ':' (authenticator apps split on it)."
    if len(value) > 64:  # it is in the QR code twice: a longer one may not fit in any QR code
        return "totp.issuer is too long (64 characters at most)."
    return None


def _check_radius_attribute(value: str) -> str | None:
    if len(value.encode("utf-8")) > 253:
        return "radius.nas_identifier is too long for a RADIUS attribute (253 bytes at most)."
    return None


def _check_digits(value: int) -> str | None:
    return None if value in (6, 8) else "totp.digits is 6 or 8."


def _check_url(value: str) -> str | None:
    if value and not re.match(r"^https?://[^\s/]+", value):
        return f"'{value}' is not an http(s) URL."
    return None


def _check_host(value: str) -> str | None:
    if value and not re.match(r"^[A-Za-z0-9.\-:\[\]]+$", value):
        return f"'{value}' is not a host name or address."
    return None


ALL_TYPES = tuple(t.value for t in MfaType if t is not MfaType.NONE)

SETTING_SPECS: tuple[SettingSpec, ...] = (
    SettingSpec("mfa.usage", "choice", "optional", "MFA usage", choices=USAGE_CHOICES),
    SettingSpec("mfa.supported", "types", ("totp",), "Supported MFA types", choices=ALL_TYPES),
    SettingSpec("mfa.default_type", "choice", "totp", "Default type (used by Required)", choices=ALL_TYPES),
    SettingSpec("mfa.pending_expiry_days", "int", 7, "Days before a pending configuration expires (0 = never)", minimum=0, maximum=365),
    SettingSpec("alternate.email", "bool", False, "Alternate login: Email code"),
    SettingSpec("alternate.backup_codes", "bool", True, "Alternate login: Backup codes"),
    SettingSpec("backup_codes.count", "int", 10, "Number of backup codes", minimum=5, maximum=50),
    SettingSpec("lockout.attempts", "int", 5, "Failed second-factor attempts before lock", minimum=1, maximum=100),
    SettingSpec("lockout.minutes", "int", 15, "Lock duration in minutes, doubling per consecutive lock (0 = until unlocked)", minimum=0, maximum=10080),
    SettingSpec("totp.issuer", "str", "mfa-tui", "Authenticator issuer name", check=_check_issuer),
    SettingSpec("totp.digits", "int", 6, "Authenticator digits (6 or 8)", minimum=6, maximum=8, check=_check_digits),
    SettingSpec("totp.period", "int", 30, "Authenticator period in seconds", minimum=15, maximum=120),
    SettingSpec("totp.algorithm", "choice", "SHA1", "Authenticator algorithm", choices=("SHA1", "SHA256", "SHA512")),
    SettingSpec("totp.drift", "int", 1, "Allowed clock drift in time-steps", minimum=0, maximum=10),
    SettingSpec("smtp.host", "str", "", "SMTP host", check=_check_host),
    SettingSpec("smtp.port", "int", 587, "SMTP port", minimum=1, maximum=65535),
    SettingSpec("smtp.security", "choice", "starttls", "SMTP security", choices=("none", "starttls", "tls")),
    SettingSpec("smtp.username", "str", "", "SMTP username"),
    SettingSpec("smtp.password", "str", "", "SMTP password", secret=True),
    SettingSpec("smtp.from", "str", "", "SMTP From address"),
    SettingSpec("smtp.verify_tls", "bool", True, "SMTP: verify the server's TLS certificate"),
    SettingSpec("smtp.timeout", "int", 10, "SMTP timeout in seconds", minimum=1, maximum=60),
    SettingSpec("sms.mode", "choice", "twilio", "SMS delivery", choices=("twilio", "carrier")),
    SettingSpec("sms.base_url", "str", "https://api.twilio.com", "SMS gateway base URL", check=_check_url),
    SettingSpec("sms.account_sid", "str", "", "SMS gateway account SID"),
    SettingSpec("sms.auth_token", "str", "", "SMS gateway auth token", secret=True),
    SettingSpec("sms.from", "str", "", "SMS sender"),
    SettingSpec("sms.carrier_domain", "str", "", "SMS carrier email gateway domain (carrier mode)", check=_check_host),
    SettingSpec("sms.timeout", "int", 10, "SMS gateway timeout in seconds", minimum=1, maximum=60),
    SettingSpec("radius.server", "str", "", "RADIUS server", check=_check_host),
    SettingSpec("radius.port", "int", 1812, "RADIUS port", minimum=1, maximum=65535),
    SettingSpec("radius.secret", "str", "", "RADIUS shared secret", secret=True),
    SettingSpec("radius.timeout", "int", 5, "RADIUS timeout in seconds", minimum=1, maximum=60),
    SettingSpec("radius.nas_identifier", "str", "mfa-tui", "RADIUS NAS-Identifier", check=_check_radius_attribute),
    SettingSpec("radius.strip_domain", "bool", False, "RADIUS: strip the domain from usernames"),
    SettingSpec("radius.failover_server", "str", "", "RADIUS failover server", check=_check_host),
    SettingSpec("radius.failover_port", "int", 1812, "RADIUS failover port", minimum=1, maximum=65535),
    SettingSpec("radius.failover_secret", "str", "", "RADIUS failover shared secret", secret=True),
    SettingSpec("duo.api_host", "str", "", "Duo API host", check=_check_host),
    SettingSpec("duo.integration_key", "str", "", "Duo integration key"),
    SettingSpec("duo.secret_key", "str", "", "Duo secret key", secret=True),
    SettingSpec("duo.timeout", "int", 10, "Duo timeout in seconds (a push adds 60)", minimum=1, maximum=60),
    SettingSpec("duo.ca_file", "str", "", "Duo CA file (empty = the Duo CAs)"),
    SettingSpec("yubikey.mode", "choice", "local", "Yubikey validation", choices=("local", "server")),
    SettingSpec("yubikey.server_url", "str", "https://api.yubico.com/wsapi/2.0/verify", "Yubikey validation server URL", check=_check_url),
    SettingSpec("yubikey.client_id", "str", "", "Yubikey validation client id"),
    SettingSpec("yubikey.api_key", "str", "", "Yubikey validation API key", secret=True),
    SettingSpec("tap.lifetime_minutes", "int", 60, "Temporary access pass lifetime in minutes", minimum=5, maximum=10080),
    SettingSpec("tap.single_use", "bool", True, "Temporary access pass is single use"),
)  # fmt: skip
SPECS_BY_KEY = {spec.key: spec for spec in SETTING_SPECS}


def spec_for(key: str) -> SettingSpec:
    try:
        return SPECS_BY_KEY[key]
    except KeyError:
        raise InputError(f"'{key}' is not a setting; 'mfa-tui settings show' lists them.") from None


@dataclass(frozen=True)
class Settings:
    """Every server setting, typed, with its default. Build with ``Settings.from_values``."""

    values: dict[str, Any] = field(
        default_factory=lambda: {s.key: s.default for s in SETTING_SPECS}
    )

    @classmethod
    def from_values(cls, stored: dict[str, Any]) -> Settings:
        values = {spec.key: spec.default for spec in SETTING_SPECS}
        values.update({key: value for key, value in stored.items() if key in SPECS_BY_KEY})
        return cls(values)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def with_value(self, key: str, value: Any) -> Settings:
        return replace(self, values={**self.values, key: value})

    # The values the code reads most, named.
    @property
    def usage(self) -> str:
        return self.values["mfa.usage"]

    @property
    def supported_types(self) -> tuple[str, ...]:
        return tuple(self.values["mfa.supported"])

    @property
    def default_type(self) -> str:
        return self.values["mfa.default_type"]

    @property
    def lockout_attempts(self) -> int:
        return self.values["lockout.attempts"]

    @property
    def lockout_minutes(self) -> int:
        return self.values["lockout.minutes"]

    @property
    def backup_codes_enabled(self) -> bool:
        return self.values["alternate.backup_codes"]

    @property
    def backup_code_count(self) -> int:
        return self.values["backup_codes.count"]

    @property
    def totp_drift(self) -> int:
        return self.values["totp.drift"]

    @property
    def totp_issuer(self) -> str:
        return self.values["totp.issuer"]


def validate_combination(settings: Settings) -> None:
    """Rules between keys, checked before any change is saved."""
    from mfa_tui.core.factors import available_types

    supported = settings.supported_types
    if not supported and settings.usage == "required":
        raise InputError("MFA usage Required needs at least one supported MFA type.")
    for name in supported:
        if name not in available_types():
            raise InputError(
                f"{MFA_TYPE_LABELS[MfaType(name)]} is not available in this version; "
                f"supported types can be {', '.join(available_types())}."
            )
    if settings.default_type not in supported and supported:
        raise InputError(
            f"The default type {settings.default_type} must be one of the supported types "
            f"({', '.join(supported)}); change mfa.supported or mfa.default_type first."
        )
