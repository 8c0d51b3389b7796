"""How far a user's enrollment has come, derived from the state enrollment already keeps.

No extra column: the stage follows from the user's status, their credentials (a *verifying* one,
proven or not, and the active one) and the backup codes issued since the status last changed, so
it can never disagree with what the user can actually do. One small read, cheap enough for an
agent's screen to ask every second (see ``ui/widgets/enrollment_progress.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import col, select

from mfa_tui.core.context import Context
from mfa_tui.core.models import BackupCode, CredentialState, MfaCredential, MfaStatus, MfaType, User

# In order: what the agent sees change while the user enrolls.
STAGE_LABELS = {
    "none": "No enrollment in progress.",
    "waiting": "Waiting for the user to log in.",
    "started": "QR code shown: waiting for the user's first code.",
    "code_verified": "Code verified.",
    "active": "Code verified: the new factor is active.",
    "backup_codes_saved": "Backup codes saved: enrollment complete.",
}


@dataclass(frozen=True)
class Progress:
    stage: str
    mfa_type: str

    @property
    def label(self) -> str:
        if self.stage == "started" and self.mfa_type != MfaType.TOTP:
            return "Setup started: waiting for the user's first code."
        return STAGE_LABELS[self.stage]


def enrollment_progress(ctx: Context, user_id: int) -> Progress:
    with ctx.db.read() as session:
        user = session.get(User, user_id)
        if user is None:
            return Progress("none", MfaType.NONE)
        rows = session.exec(
            select(MfaCredential.state, MfaCredential.verified_at).where(
                MfaCredential.user_id == user_id
            )
        ).all()
        verifying = [
            verified_at for state, verified_at in rows if state == CredentialState.VERIFYING
        ]
        if verifying:
            return Progress("code_verified" if verifying[0] else "started", user.mfa_type)
        if user.mfa_status == MfaStatus.PENDING:
            return Progress("waiting", user.mfa_type)
        if user.mfa_status != MfaStatus.CONFIGURED:
            return Progress("none", user.mfa_type)
        since = user.mfa_status_since
        issued = session.exec(
            select(func.count())
            .select_from(BackupCode)
            .where(
                BackupCode.user_id == user_id,
                *((col(BackupCode.created_at) >= since,) if since is not None else ()),
            )
        ).one()
        return Progress("backup_codes_saved" if issued else "active", user.mfa_type)
