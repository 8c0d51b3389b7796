"""Authenticator (TOTP, RFC 6238): a shared secret shown as a QR code."""

from __future__ import annotations

from datetime import datetime

from mfa_tui.core import otp
from mfa_tui.core.crypto import SecretBox
from mfa_tui.core.factors import EnrollmentStart
from mfa_tui.core.models import CredentialState, MfaCredential
from mfa_tui.core.settings import Settings

TABLE = "mfa_credentials"


class TotpFactor:
    type = "totp"
    label = "Authenticator (TOTP)"
    code_prompt = "Enter the code your authenticator app shows."

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
        secret = otp.new_secret()
        params = otp.TotpParameters(
            digits=settings["totp.digits"],
            period=settings["totp.period"],
            algorithm=settings["totp.algorithm"],
        )
        credential = MfaCredential(
            id=credential_id,
            user_id=user_id,
            type=self.type,
            state=CredentialState.VERIFYING,
            secret=box.encrypt(secret, table=TABLE, row_id=credential_id, field="secret"),
            digits=params.digits,
            period=params.period,
            algorithm=params.algorithm,
            created_at=now,
        )
        return credential, self._view(secret, params, settings, credential_id, account)

    def enrollment_view(
        self, box: SecretBox, settings: Settings, credential: MfaCredential, account: str
    ) -> EnrollmentStart:
        return self._view(
            self._secret(box, credential), _params(credential), settings, credential.id, account
        )

    def matching_counter(
        self,
        box: SecretBox,
        settings: Settings,
        credential: MfaCredential,
        code: str,
        now: datetime,
    ) -> int | None:
        return otp.matching_step(
            self._secret(box, credential),
            code,
            now.timestamp(),
            _params(credential),
            settings.totp_drift,
        )

    @staticmethod
    def _secret(box: SecretBox, credential: MfaCredential) -> bytes:
        assert credential.secret is not None
        return box.decrypt(credential.secret, table=TABLE, row_id=credential.id, field="secret")

    def _view(
        self,
        secret: bytes,
        params: otp.TotpParameters,
        settings: Settings,
        credential_id: str,
        account: str,
    ) -> EnrollmentStart:
        return EnrollmentStart(
            credential_id=credential_id,
            instructions=(
                "Scan the QR code with an authenticator app (or type the secret), "
                "then enter the code it shows."
            ),
            provisioning_uri=otp.otpauth_uri(
                secret, issuer=settings.totp_issuer, account=account, params=params
            ),
            manual_secret=otp.grouped_secret(secret),
        )


def _params(credential: MfaCredential) -> otp.TotpParameters:
    return otp.TotpParameters(
        digits=credential.digits or 6,
        period=credential.period or 30,
        algorithm=credential.algorithm or "SHA1",
    )
