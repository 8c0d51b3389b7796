"""The vocabulary of roles, MFA types and states — importable without the database layer.

Kept apart from models.py so the login screen can paint before SQLAlchemy is imported.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    USER = "user"
    HELPDESK = "helpdesk"
    ADMIN = "admin"


class MfaType(StrEnum):
    NONE = "none"
    TOTP = "totp"
    EMAIL = "email"
    SMS = "sms"
    YUBIKEY = "yubikey"
    RADIUS = "radius"
    DUO = "duo"


MFA_TYPE_LABELS = {
    MfaType.NONE: "None",
    MfaType.TOTP: "Authenticator (TOTP)",
    MfaType.EMAIL: "Email",
    MfaType.SMS: "SMS",
    MfaType.YUBIKEY: "Yubikey",
    MfaType.RADIUS: "RADIUS",
    MfaType.DUO: "Duo",
}


class MfaStatus(StrEnum):
    NONE = "none"
    PENDING = "pending"
    CONFIGURED = "configured"


MFA_STATUS_LABELS = {
    MfaStatus.NONE: "Not configured",
    MfaStatus.PENDING: "Pending user configuration",
    MfaStatus.CONFIGURED: "Configured",
}


class CredentialState(StrEnum):
    VERIFYING = "verifying"  # enrolled but not yet proven: never counts for login
    ACTIVE = "active"
