"""The tables. Alembic migrations in ``mfa_tui/migrations`` create exactly this schema (a test checks).

Datetimes are timezone-aware UTC. Secrets are AES-GCM envelopes (see crypto.py), never plain values.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Column, Index, LargeBinary, Text, text
from sqlmodel import Field, SQLModel

from mfa_tui.core.kinds import (  # noqa: F401  (re-exported: the models' vocabulary)
    MFA_STATUS_LABELS,
    MFA_TYPE_LABELS,
    CredentialState,
    MfaStatus,
    MfaType,
    Role,
)


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (
        # Type None and status none go together; any other type is pending or configured.
        CheckConstraint(
            "(mfa_type = 'none' AND mfa_status = 'none') OR "
            "(mfa_type <> 'none' AND mfa_status IN ('pending', 'configured'))",
            name="ck_users_mfa_consistent",
        ),
        CheckConstraint("role IN ('user', 'helpdesk', 'admin')", name="ck_users_role"),
        # Every sortable column of the users table, with the username as tie-breaker, so a sorted
        # page is an index walk and never a sort of the whole table.
        *(
            Index(f"ix_users_sort_{column}", column, "username_key")
            for column in ("display_name", "email", "role", "mfa_type", "mfa_status")
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64)
    # casefold(username): the unique key and the sort key, so "Alice" and "alice" are one user.
    username_key: str = Field(max_length=64, unique=True)
    display_name: str | None = Field(default=None, max_length=128)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=32)
    role: str = Field(default=Role.USER, max_length=16)
    enabled: bool = True
    password_hash: str | None = Field(default=None, max_length=255)
    mfa_type: str = Field(default=MfaType.NONE, max_length=16)
    mfa_status: str = Field(default=MfaStatus.NONE, max_length=16)
    # When the current status began: pending expires mfa.pending_expiry_days after this.
    mfa_status_since: datetime | None = None
    # Optimistic locking: every update is "... WHERE version = :seen", then version + 1.
    version: int = 1
    created_at: datetime
    updated_at: datetime


class MfaCredential(SQLModel, table=True):
    __tablename__ = "mfa_credentials"
    __table_args__ = (
        # At most one working factor and one enrollment in progress per user.
        Index(
            "uq_mfa_credentials_active",
            "user_id",
            unique=True,
            sqlite_where=text("state = 'active'"),
            postgresql_where=text("state = 'active'"),
        ),
        Index(
            "uq_mfa_credentials_verifying",
            "user_id",
            unique=True,
            sqlite_where=text("state = 'verifying'"),
            postgresql_where=text("state = 'verifying'"),
        ),
        CheckConstraint("state IN ('verifying', 'active')", name="ck_mfa_credentials_state"),
    )

    # A random id chosen before insert, so the secret can be encrypted bound to its row.
    id: str = Field(primary_key=True, max_length=32)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    type: str = Field(max_length=16)
    state: str = Field(max_length=16)
    secret: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    digits: int | None = None
    period: int | None = None
    algorithm: str | None = Field(default=None, max_length=8)
    # The last accepted TOTP time-step or HOTP/Yubikey counter: anything at or below is a replay.
    last_used_step: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    # Non-secret, type-specific data as JSON (a Yubikey public id, a Duo device).
    device_data: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime
    # Set when the first correct code is entered; an admin's configure-now saves it on Update.
    verified_at: datetime | None = None


class BackupCode(SQLModel, table=True):
    __tablename__ = "backup_codes"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    code_hash: str = Field(max_length=64)
    created_at: datetime
    used_at: datetime | None = None


class DeliveredCode(SQLModel, table=True):
    """A code sent by email or SMS: kept only as a keyed hash, with an expiry and an attempt count."""

    __tablename__ = "delivered_codes"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    channel: str = Field(max_length=16)
    purpose: str = Field(max_length=32)
    code_hash: str = Field(max_length=64)
    created_at: datetime
    expires_at: datetime
    attempts: int = 0
    used_at: datetime | None = None


class Lockout(SQLModel, table=True):
    """Failed second-factor attempts. Attempts are reserved here *before* a code is checked."""

    __tablename__ = "lockouts"

    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", primary_key=True)
    failed_attempts: int = 0
    locked_at: datetime | None = None
    # Consecutive locks without a success in between: each doubles the lock duration.
    consecutive_locks: int = 0
    # Wrong passwords never lock (anyone could lock anyone out); they are slowed instead.
    password_failures: int = 0
    last_password_failure_at: datetime | None = None


class ServerSetting(SQLModel, table=True):
    __tablename__ = "server_settings"

    key: str = Field(primary_key=True, max_length=64)
    # JSON for plain values; a base64 AES-GCM envelope for secrets.
    value: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime


class KeyCheck(SQLModel, table=True):
    """Recognises the secret key without storing it: a wrong key is a clear error, not garbage."""

    __tablename__ = "key_checks"

    key_id: str = Field(primary_key=True, max_length=32)
    check_value: str = Field(max_length=64)
    created_at: datetime


class AuditEvent(SQLModel, table=True):
    """Append-only; each row's HMAC covers its content and the previous row's HMAC."""

    __tablename__ = "audit_events"

    # Assigned from audit_head under its lock: contiguous, so a deleted row leaves a gap.
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: datetime = Field(index=True)
    actor: str = Field(max_length=128)
    action: str = Field(max_length=64, index=True)
    target: str | None = Field(default=None, max_length=128)
    details: str = Field(sa_column=Column(Text, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    """The single row that appends lock on, and the count and hash an operator can compare."""

    __tablename__ = "audit_head"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    count: int = 0
    last_hash: str = Field(max_length=64)


class ResetRequest(SQLModel, table=True):
    """ "Lost your device?" at the second-factor prompt: staff approve or deny it."""

    __tablename__ = "reset_requests"
    __table_args__ = (
        # One open request per user: asking twice does not queue twice.
        Index(
            "uq_reset_requests_open",
            "user_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        CheckConstraint(
            "status IN ('pending', 'approved', 'denied')", name="ck_reset_requests_status"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    status: str = Field(default="pending", max_length=16)
    created_at: datetime
    decided_by: str | None = Field(default=None, max_length=128)
    decided_at: datetime | None = None
    # Set once the user has been told the outcome at login.
    notified_at: datetime | None = None


class CallerVerification(SQLModel, table=True):
    """A helpdesk agent checked that the caller is this user; it counts for that agent, for a while."""

    __tablename__ = "caller_verifications"
    __table_args__ = (Index("ix_caller_verifications_lookup", "user_id", "agent"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    # The actor name of the agent who verified (a username, or cli:<os-user>).
    agent: str = Field(max_length=128)
    # factor | backup_code | lost_code
    method: str = Field(max_length=32)
    verified_at: datetime
    expires_at: datetime


class AccessPass(SQLModel, table=True):
    """A temporary access pass or an enrollment invitation: a one-time code kept as a keyed hash.

    Both only ever lead into enrollment of a new factor; neither is a second factor."""

    __tablename__ = "access_passes"
    __table_args__ = (
        CheckConstraint("kind IN ('tap', 'invitation')", name="ck_access_passes_kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    kind: str = Field(max_length=16)
    code_hash: str = Field(max_length=64)
    created_by: str = Field(max_length=128)
    created_at: datetime
    expires_at: datetime
    single_use: bool = True
    used_at: datetime | None = None
    revoked_at: datetime | None = None


GENESIS_HASH = "0" * 64
