"""One module per MFA type, all behind the small ``Factor`` protocol, so screens never branch on type.

Adding a type: write its module here (new_credential, enrollment_view, challenge, verify), add it
to ``_FACTORS`` below, and give its settings a section in the Server Settings screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from mfa_tui.core.errors import MfaTuiError

if TYPE_CHECKING:
    from mfa_tui.core.context import Context
    from mfa_tui.core.models import MfaCredential, User
    from mfa_tui.core.settings import Settings


@dataclass(frozen=True)
class EnrollmentStart:
    """What the person enrolling is shown: for TOTP the otpauth URI (as a QR) and the secret."""

    credential_id: str
    instructions: str
    provisioning_uri: str | None = None
    manual_secret: str | None = None


@dataclass(frozen=True)
class FactorEnv:
    """What a factor may use: the context (database, key, clock), the settings and the time."""

    ctx: Context
    settings: Settings
    now: datetime


@dataclass(frozen=True)
class Proof:
    """A code was right. ``counter`` (a TOTP time-step, a Yubikey counter) is consumed once by the
    caller with a conditional UPDATE; ``device_data`` is stored on the credential (bound at enrollment)."""

    counter: int | None = None
    device_data: str | None = None


class ProviderUnavailable(MfaTuiError):
    """A remote service (SMTP, SMS gateway, RADIUS, Duo) failed: not the user's fault, not counted."""

    exit_code = 3


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


def factor_for(mfa_type: str) -> Factor:
    try:
        return _factors()[mfa_type]
    except KeyError:
        raise LookupError(mfa_type) from None


def available_types() -> tuple[str, ...]:
    """Types this version can enroll, in the order shown in Type dropdowns."""
    return tuple(_factors())


def _factors() -> dict[str, Factor]:
    from mfa_tui.core.factors.totp import TotpFactor

    return {"totp": TotpFactor()}
