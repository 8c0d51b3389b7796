"""What the Email and SMS factors share: a code sent to the user's address or number, entered back.

The credential holds no secret: it only says the user uses this channel. Each challenge sends a
new code bound to the credential (see ``codes``); the address is the user's current one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from mfa_tui.core.delivery import codes
from mfa_tui.core.errors import InputError
from mfa_tui.core.factors import (
    EnrollmentStart,
    FactorEnv,
    Proof,
    ProviderUnavailable,
    verifying_credential,
)
from mfa_tui.core.models import CredentialState, MfaCredential, User

LIFETIME_MINUTES = int(codes.LIFETIME.total_seconds() // 60)


class CodeByMessageFactor(ABC):
    """Subclasses name the channel and say where codes go and how they are sent."""

    type: str
    label: str
    code_prompt: str
    channel: str
    # "an email address" / "a phone number": used in the sentences below.
    destination_noun: str

    @abstractmethod
    def destination(self, user: User) -> str | None: ...

    @abstractmethod
    def masked(self, destination: str) -> str: ...

    @abstractmethod
    def deliver(self, env: FactorEnv, destination: str, code: str) -> None: ...

    def new_credential(
        self, env: FactorEnv, *, credential_id: str, user: User
    ) -> tuple[MfaCredential, EnrollmentStart]:
        if not self.destination(user):
            raise InputError(
                f"'{user.username}' has no {self.destination_noun}: add one under General and "
                f"save, then configure {self.label}."
            )
        credential = verifying_credential(env, credential_id, user, self.type)
        return credential, self.enrollment_view(env, credential, user)

    def enrollment_view(
        self, env: FactorEnv, credential: MfaCredential, user: User
    ) -> EnrollmentStart:
        return EnrollmentStart(
            credential_id=credential.id,
            instructions=(
                f"Codes for {user.username} go to {self.destination(user) or 'nowhere yet'}; "
                f"enter the code from the {self.channel_noun}."
            ),
        )

    @property
    def channel_noun(self) -> str:
        return "email" if self.channel == "email" else "text message"

    def challenge(self, env: FactorEnv, credential: MfaCredential, user: User) -> str | None:
        destination = self.destination(user)
        if not destination:
            raise ProviderUnavailable(
                f"'{user.username}' has no {self.destination_noun} to send a code to: "
                "ask the helpdesk to add one."
            )
        assert user.id is not None
        issued = codes.send_code(
            env,
            user_id=user.id,
            channel=self.channel,
            purpose=_purpose(credential),
            binding=credential.id,
            deliver=lambda code: self.deliver(env, destination, code),
        )
        return codes.sent_message(issued, self.masked(destination))

    def verify(
        self, env: FactorEnv, credential: MfaCredential, user: User, code: str
    ) -> Proof | None:
        assert user.id is not None
        accepted = codes.check_code(
            env,
            user_id=user.id,
            channel=self.channel,
            purpose=_purpose(credential),
            binding=credential.id,
            code=code,
        )
        return Proof() if accepted else None

    def message_text(self, env: FactorEnv, code: str) -> str:
        issuer = env.settings["totp.issuer"]
        return f"Your {issuer} code is {code}. It is valid for {LIFETIME_MINUTES} minutes."


def _purpose(credential: MfaCredential) -> str:
    """A code sent to confirm an enrollment never logs anyone in, and the reverse."""
    use = "enroll" if credential.state == CredentialState.VERIFYING else "login"
    return f"{use}:{credential.id[:16]}"
