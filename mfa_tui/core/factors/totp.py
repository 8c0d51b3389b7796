"""Authenticator (TOTP, RFC 6238): a shared secret shown as a QR code."""

from __future__ import annotations

from mfa_tui.core import otp
from mfa_tui.core.factors import EnrollmentStart, FactorEnv, Proof
from mfa_tui.core.models import CredentialState, MfaCredential, User

TABLE = "mfa_credentials"


class TotpFactor:
    type = "totp"
    label = "Authenticator (TOTP)"
    code_prompt = "Enter the code your authenticator app shows."

    def new_credential(
        self, env: FactorEnv, *, credential_id: str, user: User
    ) -> tuple[MfaCredential, EnrollmentStart]:
        secret = otp.new_secret()
        settings = env.settings
        params = otp.TotpParameters(
            digits=settings["totp.digits"],
            period=settings["totp.period"],
            algorithm=settings["totp.algorithm"],
        )
        credential = MfaCredential(
            id=credential_id,
            user_id=user.id,  # type: ignore[arg-type]
            type=self.type,
            state=CredentialState.VERIFYING,
            secret=env.ctx.box.encrypt(secret, table=TABLE, row_id=credential_id, field="secret"),
            digits=params.digits,
            period=params.period,
            algorithm=params.algorithm,
            created_at=env.now,
        )
        return credential, self._view(env, secret, params, credential_id, user.username)

    def enrollment_view(
        self, env: FactorEnv, credential: MfaCredential, user: User
    ) -> EnrollmentStart:
        return self._view(
            env, self._secret(env, credential), _params(credential), credential.id, user.username
        )

    def challenge(self, env: FactorEnv, credential: MfaCredential, user: User) -> str | None:
        return None

    def verify(
        self, env: FactorEnv, credential: MfaCredential, user: User, code: str
    ) -> Proof | None:
        step = otp.matching_step(
            self._secret(env, credential),
            code,
            env.now.timestamp(),
            _params(credential),
            env.settings.totp_drift,
        )
        return None if step is None else Proof(counter=step)

    @staticmethod
    def _secret(env: FactorEnv, credential: MfaCredential) -> bytes:
        assert credential.secret is not None
        return env.ctx.box.decrypt(
            credential.secret, table=TABLE, row_id=credential.id, field="secret"
        )

    def _view(
        self,
        env: FactorEnv,
        secret: bytes,
        params: otp.TotpParameters,
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
                secret, issuer=env.settings.totp_issuer, account=account, params=params
            ),
            manual_secret=otp.grouped_secret(secret),
        )


def _params(credential: MfaCredential) -> otp.TotpParameters:
    return otp.TotpParameters(
        digits=credential.digits or 6,
        period=credential.period or 30,
        algorithm=credential.algorithm or "SHA1",
    )
