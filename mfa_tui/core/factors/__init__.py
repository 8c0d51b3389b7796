"""One module per MFA type, all behind the small ``Factor`` protocol, so screens never branch on type.

Adding a type: write its module here, register it in ``FACTORS`` below, and give it a settings form.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from mfa_tui.core.crypto import SecretBox
from mfa_tui.core.models import MfaCredential
from mfa_tui.core.settings import Settings


@dataclass(frozen=True)
class EnrollmentStart:
    """What the person enrolling is shown: for TOTP the otpauth URI (as a QR) and the secret."""

    credential_id: str
    instructions: str
    provisioning_uri: str | None = None
    manual_secret: str | None = None


class Factor(Protocol):
    type: str
    label: str
    code_prompt: str

    def new_credential(
        self,
        box: SecretBox,
        settings: Settings,
        *,
        credential_id: str,
        user_id: int,
        account: str,
        now: datetime,
    ) -> tuple[MfaCredential, EnrollmentStart]:
        """A *verifying* credential (never valid for login) and what to show while enrolling."""
        ...

    def enrollment_view(
        self, box: SecretBox, settings: Settings, credential: MfaCredential, account: str
    ) -> EnrollmentStart:
        """Show a pending enrollment again (the QR code while it is still verifying)."""
        ...

    def matching_counter(
        self,
        box: SecretBox,
        settings: Settings,
        credential: MfaCredential,
        code: str,
        now: datetime,
    ) -> int | None:
        """The time-step or counter the code proves, or None. The caller refuses replays with it."""
        ...


def factor_for(mfa_type: str) -> Factor:
    from mfa_tui.core.factors.totp import TotpFactor

    factors: dict[str, Factor] = {"totp": TotpFactor()}
    try:
        return factors[mfa_type]
    except KeyError:
        raise LookupError(mfa_type) from None


def available_types() -> tuple[str, ...]:
    """Types this version can enroll, in the order shown in Type dropdowns."""
    return ("totp",)
