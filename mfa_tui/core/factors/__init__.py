"""One module per MFA type, all behind the small ``Factor`` protocol, so screens never branch on type.

Adding a type: write its module here (new_credential, enrollment_view, challenge, verify), add it
to ``_FACTORS`` below, and give its settings a section in the Server Settings screen.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING, Protocol

from mfa_tui.core.errors import MfaTuiError

if TYPE_CHECKING:
    from mfa_tui.core.context import Context
    from mfa_tui.core.models import MfaCredential, User
    from mfa_tui.core.settings import Settings


@dataclass(frozen=True)
class EnrollmentField:
    """An input an enrollment needs besides the code (a Yubikey's AES key), shown above the code."""

    name: str
    label: str
    secret: bool = False  # typed hidden, like a password


@dataclass(frozen=True)
class EnrollmentStart:
    """What the person enrolling is shown: for TOTP the otpauth URI (as a QR) and the secret."""

    credential_id: str
    instructions: str
    provisioning_uri: str | None = None
    manual_secret: str | None = None
    # Typed with the first code; they reach ``verify`` in the code (see ``enrollment_code``).
    fields: tuple[EnrollmentField, ...] = ()


def enrollment_code(code: str, fields: Mapping[str, str]) -> str:
    """The one string ``confirm_code`` takes: the code alone when there are no extra fields
    (TOTP), else a JSON object ``{"code": ..., "fields": {name: value}}``."""
    if not fields:
        return code
    return json.dumps({"code": code, "fields": dict(fields)}, sort_keys=True)


def split_enrollment_code(text: str) -> tuple[str, dict[str, str]]:
    """The code and the extra fields from ``enrollment_code`` (no fields for a plain code)."""
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: nested too deep to decode
            return text, {}
        if (
            isinstance(data, dict)
            and isinstance(data.get("code"), str)
            and isinstance(data.get("fields"), dict)
            and all(isinstance(value, str) for value in data["fields"].values())
        ):
            return data["code"], dict(data["fields"])
    return text, {}


@dataclass(frozen=True)
class FactorEnv:
    """What a factor may use: the context (database, key, clock), the settings and the time."""

    ctx: Context
    settings: Settings
    now: datetime
    # The caller hands back what a ChallengeRequired carried (a RADIUS Access-Challenge's State).
    challenge_state: str | None = None


@dataclass(frozen=True)
class Proof:
    """A code was right. ``counter`` (a TOTP time-step, a Yubikey counter) is consumed once by the
    caller with a conditional UPDATE; ``device_data`` is stored on the credential (bound at enrollment)."""

    counter: int | None = None
    device_data: str | None = None
    # Already encrypted for the credential's row: a secret typed with the first code (a Yubikey's
    # AES key), stored on the credential when the enrollment is confirmed.
    sealed_secret: bytes | None = None


class ProviderUnavailable(MfaTuiError):
    """A remote service (SMTP, SMS gateway, RADIUS, Duo) failed: not the user's fault, not counted."""

    exit_code = 3


class ChallengeRequired(MfaTuiError):
    """The code was right so far but the provider asks for more (a RADIUS Access-Challenge): show
    ``prompt``, then verify the next code with ``state`` handed back as ``FactorEnv.challenge_state``."""

    exit_code = 1

    def __init__(self, prompt: str, state: str) -> None:
        super().__init__(prompt)
        self.prompt = prompt
        self.state = state


class Factor(Protocol):
    type: str
    label: str
    code_prompt: str

    def new_credential(
        self, env: FactorEnv, *, credential_id: str, user: User
    ) -> tuple[MfaCredential, EnrollmentStart]:
        """A *verifying* credential (never valid for login) and what to show while enrolling."""
        ...

    def enrollment_view(
        self, env: FactorEnv, credential: MfaCredential, user: User
    ) -> EnrollmentStart:
        """Show a pending enrollment again (the QR code while it is still verifying)."""
        ...

    def challenge(self, env: FactorEnv, credential: MfaCredential, user: User) -> str | None:
        """Send what the user needs before typing a code (an email, an SMS, a push), outside any
        database transaction; the sentence to show. None when nothing is sent (TOTP)."""
        ...

    def verify(
        self, env: FactorEnv, credential: MfaCredential, user: User, code: str
    ) -> Proof | None:
        """Check a code (also used to confirm an enrollment); None when it is wrong."""
        ...


def verifying_credential(
    env: FactorEnv, credential_id: str, user: User, mfa_type: str
) -> MfaCredential:
    """A new credential that keeps no secret of its own (the secret lives with a provider)."""
    from mfa_tui.core.models import CredentialState, MfaCredential

    return MfaCredential(
        id=credential_id,
        user_id=user.id,  # type: ignore[arg-type]
        type=mfa_type,
        state=CredentialState.VERIFYING,
        created_at=env.now,
    )


def factor_for(mfa_type: str) -> Factor:
    try:
        module, name = _factors()[mfa_type]
    except KeyError:
        raise LookupError(mfa_type) from None
    return _load(module, name)


def available_types() -> tuple[str, ...]:
    """Types this version can enroll, in the order shown in Type dropdowns."""
    return tuple(_factors())


@cache
def _load(module: str, name: str) -> Factor:
    # Imported when first asked for: checking one code needs one factor's libraries, not every
    # provider's client (a tenth of a `verify` process went to the five it did not use).
    factor: Factor = getattr(import_module(f"mfa_tui.core.factors.{module}"), name)()
    return factor


def _factors() -> dict[str, tuple[str, str]]:
    """Each type's module in this package and the class in it."""
    # In the order of the Type dropdowns (SPEC §2).
    return {
        "totp": ("totp", "TotpFactor"),
        "email": ("email", "EmailFactor"),
        "sms": ("sms", "SmsFactor"),
        "yubikey": ("yubikey", "YubikeyFactor"),
        "radius": ("radius", "RadiusFactor"),
        "duo": ("duo", "DuoFactor"),
    }
