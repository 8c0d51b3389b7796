"""Users: create, find, list page by page, edit with optimistic locking, delete, import."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Select, delete, func, text, update
from sqlmodel import Session, col, select

from mfa_tui.core import csv_import, passwords, validation
from mfa_tui.core.access import Action, Actor
from mfa_tui.core.audit import AuditEntry
from mfa_tui.core.context import Context
from mfa_tui.core.errors import ConflictError, InputError, NotFound
from mfa_tui.core.lockout import LockState, state_of
from mfa_tui.core.models import (
    CredentialState,
    Lockout,
    MfaCredential,
    MfaStatus,
    MfaType,
    ResetRequest,
    Role,
    User,
)
from mfa_tui.core.search import bulk_index_users, count_rows, search_condition
from mfa_tui.core.services.guard import authorize, refusals_audited
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.settings import Settings


@dataclass(frozen=True)
class UserView:
    """A user as screens and the CLI see it, with MFA type and status as they take effect."""

    id: int
    username: str
    display_name: str | None
    email: str | None
    phone: str | None
    role: str
    enabled: bool
    locked: bool
    mfa_type: str  # effective under the current policy
    mfa_status: str  # effective under the current policy
    stored_mfa_type: str
    stored_mfa_status: str
    mfa_status_since: datetime | None
    has_password: bool
    version: int
    reset_requested: bool = False  # an open "Lost your device?" request awaits staff

    def as_json(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "display_name": self.display_name,
            "email": self.email,
            "phone": self.phone,
            "role": self.role,
            "enabled": self.enabled,
            "locked": self.locked,
            "mfa_type": self.mfa_type,
            "mfa_status": self.mfa_status,
        }


@dataclass(frozen=True)
class GeneralFields:
    """The General section of User edit; None means "leave as it is"."""

    username: str | None = None
    display_name: str | None = None
    email: str | None = None
    phone: str | None = None
    role: str | None = None
    enabled: bool | None = None
    clear: frozenset[str] = field(default_factory=frozenset)  # fields to set to empty


def effective_mfa(mfa_type: str, mfa_status: str, settings: Settings) -> tuple[str, str]:
    if settings.usage == "skipped":
        return MfaType.NONE, MfaStatus.NONE
    if settings.usage == "required" and mfa_type == MfaType.NONE:
        return settings.default_type, MfaStatus.PENDING
    return mfa_type, mfa_status


def to_view(
    user: User, lock: LockState, settings: Settings, now: datetime, reset_requested: bool = False
) -> UserView:
    assert user.id is not None
    mfa_type, mfa_status = effective_mfa(user.mfa_type, user.mfa_status, settings)
    return UserView(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        email=user.email,
        phone=user.phone,
        role=user.role,
        enabled=user.enabled,
        locked=lock.is_locked(settings, now),
        mfa_type=mfa_type,
        mfa_status=mfa_status,
        stored_mfa_type=user.mfa_type,
        stored_mfa_status=user.mfa_status,
        mfa_status_since=user.mfa_status_since,
        has_password=user.password_hash is not None,
        version=user.version,
        reset_requested=reset_requested,
    )


def _with_lockout(*, reset_requests_only: bool = False) -> Select[Any]:
    """Users with their lockout counters and any open reset request (at most one per user)."""
    open_request = (col(ResetRequest.user_id) == col(User.id)) & (
        col(ResetRequest.status) == "pending"
    )
    statement = select(User, Lockout, ResetRequest.id).outerjoin(
        Lockout, col(Lockout.user_id) == col(User.id)
    )
    if reset_requests_only:
        return statement.join(ResetRequest, open_request)
    return statement.outerjoin(ResetRequest, open_request)


def active_credential(session: Session, user_id: int) -> MfaCredential | None:
    """The user's working factor, if any (at most one: a partial unique index)."""
    return session.exec(
        select(MfaCredential).where(
            MfaCredential.user_id == user_id, MfaCredential.state == CredentialState.ACTIVE
        )
    ).one_or_none()


def find_user(session: Session, username: str) -> User | None:
    return session.exec(
        select(User).where(User.username_key == username.strip().casefold())
    ).one_or_none()


def require_user(session: Session, username: str) -> User:
    user = find_user(session, username)
    if user is None:
        raise NotFound(f"There is no user '{username}'; 'mfa-tui users list --search' finds users.")
    return user


class UserService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.settings = SettingsStore(ctx)

    # Reading -----------------------------------------------------------------------------------

    def count(self) -> int:
        with self.ctx.db.read() as session:
            return session.exec(select(func.count()).select_from(User)).one()

    # get and get_by_id ask no one: they serve trusted callers (the CLI, the login steps). Screens
    # read through UserPager, open_for_edit or own_record, which authorize the signed-in actor.

    def get(self, username: str) -> UserView:
        with self.ctx.db.read() as session:
            user = require_user(session, username)
            return self._view(session, user)

    def get_by_id(self, user_id: int) -> UserView:
        with self.ctx.db.read() as session:
            user = session.get(User, user_id)
            if user is None:
                raise NotFound("That user no longer exists; reload the list.")
            return self._view(session, user)

    def user_row(self, user_id: int) -> User:
        """The stored user (for factors that need the email or phone); not for display."""
        with self.ctx.db.read() as session:
            user = session.get(User, user_id)
            if user is None:
                raise NotFound("That user no longer exists.")
            return user

    def own_record(self, actor: Actor) -> UserView:
        """The signed-in actor's own record (Preferences): nobody else's can be asked for."""
        if actor.user_id is None:
            raise NotFound("Sign in to see your own settings.")
        return self.get_by_id(actor.user_id)

    def open_for_edit(self, actor: Actor, user_id: int) -> UserView:
        """The user to show in User edit, if ``actor`` may edit them (a refusal is audited)."""
        with refusals_audited(self.ctx, actor), self.ctx.db.read() as session:
            user = session.get(User, user_id)
            if user is None:
                raise NotFound("That user no longer exists; reload the list.")
            authorize(actor, Action.EDIT_GENERAL, user)
            return self._view(session, user)

    def list(
        self, *, search: str | None = None, limit: int | None = None, after: str | None = None
    ) -> list[UserView]:
        """Users ordered by username, filtered in SQL; ``after`` is the last username_key seen (keyset paging)."""
        query = _with_lockout().order_by(col(User.username_key))
        if after is not None:
            query = query.where(col(User.username_key) > after)
        if limit is not None:
            query = query.limit(limit)
        with self.ctx.db.read() as session:
            condition = search_condition(session, search or "")
            if condition.where is not None:
                query = query.where(condition.where)
            settings = self.settings.load(session)
            now = self.ctx.clock.now()
            return [
                to_view(user, state_of(lock), settings, now, request is not None)
                for user, lock, request in session.exec(query).all()
            ]

    def _view(self, session: Session, user: User) -> UserView:
        lock = session.get(Lockout, user.id)
        request = session.exec(
            select(ResetRequest.id).where(
                ResetRequest.user_id == user.id, ResetRequest.status == "pending"
            )
        ).first()
        return to_view(
            user,
            state_of(lock),
            self.settings.load(session),
            self.ctx.clock.now(),
            request is not None,
        )

    # Changing ----------------------------------------------------------------------------------

    def create(
        self,
        actor: Actor,
        username: str,
        *,
        display_name: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        role: str = Role.USER,
        password: str | None = None,
        mfa_type: str = MfaType.NONE,
    ) -> UserView:
        """A new user; a type other than None makes them configure it at their first login."""
        name = validation.username(username)
        values = {
            "display_name": validation.display_name(display_name),
            "email": validation.email(email),
            "phone": validation.phone(phone),
            "role": validation.role(role),
        }
        settings = self.settings.load()
        values["mfa_type"] = validation.supported_mfa_type(mfa_type, settings.supported_types)
        values["mfa_status"] = (
            MfaStatus.NONE if values["mfa_type"] == MfaType.NONE else MfaStatus.PENDING
        )
        if password is not None:
            passwords.check_password_strength(password, name)
        password_hash = passwords.hash_password(password) if password is not None else None
        now = self.ctx.clock.now()
        with refusals_audited(self.ctx, actor), self.ctx.db.write() as session:
            authorize(actor, Action.MANAGE_ACCOUNTS, None)
            if find_user(session, name) is not None:
                raise InputError(f"A user named '{name}' already exists (usernames ignore case).")
            user = User(
                username=name,
                username_key=name.casefold(),
                password_hash=password_hash,
                mfa_status_since=now if values["mfa_status"] == MfaStatus.PENDING else None,
                created_at=now,
                updated_at=now,
                **values,
            )
            session.add(user)
            session.flush()
            self.ctx.audit.append(
                session,
                AuditEntry(actor.name, "user.create", name, {"after": _public_fields(user)}),
                now,
            )
            return to_view(user, LockState(), self.settings.load(session), now)

    def set_password(self, actor: Actor, username: str, password: str) -> None:
        with self.ctx.db.read() as session:
            name = require_user(session, username).username
        passwords.check_password_strength(password, name)
        password_hash = passwords.hash_password(password)  # slow: before the write lock is taken
        with refusals_audited(self.ctx, actor), self.ctx.db.write() as session:
            user = require_user(session, username)
            authorize(actor, Action.EDIT_GENERAL, user)
            self.apply_password_hash(session, actor, user, password_hash, self.ctx.clock.now())

    def apply_password_hash(
        self, session: Session, actor: Actor, user: User, password_hash: str, now: datetime
    ) -> None:
        session.execute(
            update(User)
            .where(col(User.id) == user.id)
            .values(password_hash=password_hash, version=User.version + 1, updated_at=now)
        )
        self.ctx.audit.append(
            session, AuditEntry(actor.name, "user.set_password", user.username), now
        )

    def update_general(
        self, actor: Actor, user_id: int, expected_version: int, fields: GeneralFields
    ) -> UserView:
        """Save the General section if nobody saved this user since ``expected_version`` was read."""
        with refusals_audited(self.ctx, actor), self.ctx.db.write() as session:
            user = lock_for_edit(session, user_id, expected_version)
            authorize(actor, Action.EDIT_GENERAL, user)
            self.apply_general(session, actor, user, fields, self.ctx.clock.now())
            return self._view(session, user)

    def apply_general(
        self, session: Session, actor: Actor, user: User, fields: GeneralFields, now: datetime
    ) -> None:
        """Inside the caller's transaction, on a row locked by ``lock_for_edit``."""
        changes = self._general_changes(session, user, fields)
        if "role" in changes or "enabled" in changes:
            authorize(actor, Action.MANAGE_ACCOUNTS, user)
            self._keep_an_admin(session, user, changes)
        if "role" in changes:
            # An invitation was sent for the account as it was; staff send a new one if wanted.
            from mfa_tui.core.services.access_pass import revoke_invitations

            revoke_invitations(session, user.id, now)  # type: ignore[arg-type]
        if not changes:
            return
        before = _public_fields(user)
        session.execute(
            update(User)
            .where(col(User.id) == user.id)
            .values(**changes, version=User.version + 1, updated_at=now)
        )
        session.expire(user)
        session.refresh(user)
        after = _public_fields(user)
        self.ctx.audit.append(
            session,
            AuditEntry(
                actor.name,
                "user.update",
                user.username,
                {
                    "before": {k: before[k] for k in changes if k in before},
                    "after": {k: after[k] for k in changes if k in after},
                },
            ),
            now,
        )

    def delete(self, actor: Actor, username: str) -> None:
        now = self.ctx.clock.now()
        with refusals_audited(self.ctx, actor), self.ctx.db.write() as session:
            user = require_user(session, username)
            authorize(actor, Action.MANAGE_ACCOUNTS, user)
            self._keep_an_admin(session, user, {"deleted": True})
            before = _public_fields(user)
            session.execute(delete(User).where(col(User.id) == user.id))
            self.ctx.audit.append(
                session,
                AuditEntry(actor.name, "user.delete", user.username, {"before": before}),
                now,
            )

    # Helpers -----------------------------------------------------------------------------------

    def _general_changes(
        self, session: Session, user: User, fields: GeneralFields
    ) -> dict[str, Any]:
        wanted: dict[str, Any] = {}
        if fields.username is not None:
            name = validation.username(fields.username)
            if name != user.username:
                other = find_user(session, name)
                if other is not None and other.id != user.id:
                    raise InputError(
                        f"A user named '{name}' already exists (usernames ignore case)."
                    )
                wanted["username"] = name
                wanted["username_key"] = name.casefold()
        for key, check in (
            ("display_name", validation.display_name),
            ("email", validation.email),
            ("phone", validation.phone),
        ):
            raw = getattr(fields, key)
            if key in fields.clear:
                wanted[key] = None
            elif raw is not None:
                wanted[key] = check(raw)
        if fields.role is not None:
            wanted["role"] = validation.role(fields.role)
        if fields.enabled is not None:
            wanted["enabled"] = fields.enabled
        return {key: value for key, value in wanted.items() if getattr(user, key) != value}

    def _keep_an_admin(self, session: Session, user: User, changes: dict[str, Any]) -> None:
        losing_admin = user.role == Role.ADMIN and (
            changes.get("deleted")
            or changes.get("role", Role.ADMIN) != Role.ADMIN
            or changes.get("enabled") is False
        )
        if not losing_admin:
            return
        if session.get_bind().dialect.name == "postgresql":
            # One removal of an administrator at a time, and the count below is read after the
            # previous one committed: otherwise two staff demoting the last two administrators at
            # once each see the other and both succeed. (Locking the administrators' rows instead
            # would deadlock against the target row lock_for_edit already holds.) SQLite's
            # BEGIN IMMEDIATE already serializes writers.
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LAST_ADMIN_LOCK})
        others = session.exec(
            select(func.count())
            .select_from(User)
            .where(
                col(User.role) == Role.ADMIN, col(User.enabled).is_(True), col(User.id) != user.id
            )
        ).one()
        if others == 0:
            raise InputError(
                f"'{user.username}' is the last enabled administrator; make another administrator first."
            )


# pg_advisory_xact_lock key taken while an administrator is demoted, disabled or deleted.
_LAST_ADMIN_LOCK = 0x6D66_615F_6C61_7374


def lock_for_edit(session: Session, user_id: int, expected_version: int) -> User:
    """The user's row, locked until the transaction ends, if nobody saved it since it was read.

    The lock (``FOR UPDATE`` on PostgreSQL; SQLite's write transactions are already exclusive)
    makes the version check and the update one step, so a second editor cannot slip between them.
    """
    user = session.exec(select(User).where(User.id == user_id).with_for_update()).one_or_none()
    if user is None:
        raise NotFound("That user was deleted by someone else; close the form.")
    if user.version != expected_version:
        raise _conflict(user.username)
    return user


def _conflict(username: str) -> ConflictError:
    return ConflictError(
        f"Someone else saved '{username}' while you were editing; reload the form to see their changes."
    )


def _public_fields(user: User) -> dict[str, Any]:
    """What an audit entry may show of a user: never the password hash."""
    return {
        "username": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "phone": user.phone,
        "role": user.role,
        "enabled": user.enabled,
        "mfa_type": user.mfa_type,
        "mfa_status": user.mfa_status,
    }


@dataclass(frozen=True)
class ImportReport:
    imported: int
    problems: list[tuple[int, str]]


def import_users(ctx: Context, actor: Actor, path: Path, *, skip_invalid: bool) -> ImportReport:
    """Check every line first; import all good lines only if none is bad (or ``skip_invalid``)."""
    lines = csv_import.read_csv(path)
    settings = SettingsStore(ctx).load()
    with ctx.db.read() as session:
        existing = _existing_keys(
            session, {raw.get("username", "").strip().casefold() for _, raw in lines}
        )
    parsed = csv_import.parse_rows(
        lines, existing_keys=existing, supported=settings.supported_types
    )
    if parsed.problems and not skip_invalid:
        return ImportReport(0, parsed.problems)
    now = ctx.clock.now()
    with refusals_audited(ctx, actor), ctx.db.write() as session:
        authorize(actor, Action.MANAGE_ACCOUNTS)
        if _existing_keys(session, {row["username_key"] for row in parsed.rows}):
            raise ConflictError(
                "Some of these users were created while importing; run the import again."
            )
        with bulk_index_users(session):
            for start in range(0, len(parsed.rows), 5000):
                chunk = parsed.rows[start : start + 5000]
                session.execute(
                    User.__table__.insert(),  # type: ignore[attr-defined]
                    [
                        {
                            **row,
                            "enabled": True,
                            "version": 1,
                            "created_at": now,
                            "updated_at": now,
                            "mfa_status_since": (
                                now if row["mfa_status"] == MfaStatus.PENDING else None
                            ),
                        }
                        for row in chunk
                    ],
                )
        ctx.audit.append_many(
            session,
            (
                AuditEntry(
                    actor.name,
                    "user.create",
                    row["username"],
                    {
                        "after": {k: v for k, v in row.items() if k != "username_key"},
                        "source": "import",
                    },
                )
                for row in parsed.rows
            ),
            now,
        )
    return ImportReport(len(parsed.rows), parsed.problems)


def _existing_keys(session: Session, keys: set[str]) -> set[str]:
    found: set[str] = set()
    ordered = sorted(keys)
    for start in range(0, len(ordered), 900):
        chunk = ordered[start : start + 900]
        found.update(
            session.exec(select(User.username_key).where(col(User.username_key).in_(chunk))).all()
        )
    return found


SORT_COLUMNS = {
    "username": User.username_key,
    "display_name": User.display_name,
    "email": User.email,
    "role": User.role,
    "mfa_type": User.mfa_type,
    "mfa_status": User.mfa_status,
}


@dataclass(frozen=True)
class UserQuery:
    """What the users table shows: a search and a sort. Rows are fetched by position, a page at a time."""

    search: str = ""
    sort: str = "username"
    descending: bool = False
    reset_requests_only: bool = False


@dataclass(frozen=True)
class MatchCount:
    total: int
    exact: bool  # False: at least ``total`` users match (a dense search is not counted further)


class UserPager:
    """Positional pages of users for a virtual table: never the whole list.

    With an exact count, a page past the middle is read in reverse order from the end, so Home
    and End are both fast.
    """

    def __init__(self, ctx: Context, actor: Actor) -> None:
        self.ctx = ctx
        self.actor = actor  # who reads: staff or the CLI (SPEC §1, view Administration – Users)
        self.settings = SettingsStore(ctx)
        self.rows_fetched = 0  # for tests that prove the table never loads everything

    def _authorize(self) -> None:
        with refusals_audited(self.ctx, self.actor):
            authorize(self.actor, Action.VIEW_USERS)

    def count(self, query: UserQuery) -> MatchCount:
        self._authorize()
        with self.ctx.db.read() as session:
            condition = search_condition(session, query.search, short_as_prefix=True)
            statement = _with_requests(select(User.id), query.reset_requests_only)
            total, exact = count_rows(session, statement, condition)
        return MatchCount(total, exact)

    def page(
        self, query: UserQuery, offset: int, limit: int, total: int, *, exact: bool = True
    ) -> list[UserView]:
        sort_column = SORT_COLUMNS.get(query.sort, User.username_key)
        from_end = exact and offset > total // 2
        descending = query.descending != from_end
        keys = (
            [col(sort_column).desc(), col(User.username_key).desc()]
            if descending
            else [col(sort_column), col(User.username_key)]
        )
        if from_end:
            start = max(total - offset - limit, 0)
            limit = min(limit, total - offset)
        else:
            start = offset
        self._authorize()
        with self.ctx.db.read() as session:
            condition = search_condition(
                session,
                query.search,
                short_as_prefix=True,
                sorted_by_username=sort_column is User.username_key,
            )
            statement = _with_lockout(reset_requests_only=query.reset_requests_only)
            if condition.where is not None:
                statement = statement.where(condition.where)
            statement = statement.order_by(*keys).offset(start).limit(max(limit, 0))
            settings = self.settings.load(session)
            now = self.ctx.clock.now()
            rows = [
                to_view(user, state_of(lock), settings, now, request is not None)
                for user, lock, request in session.exec(statement).all()
            ]
        self.rows_fetched += len(rows)
        return rows[::-1] if from_end else rows


def _with_requests(statement: Any, reset_requests_only: bool) -> Any:
    if not reset_requests_only:
        return statement
    return statement.join(
        ResetRequest,
        (col(ResetRequest.user_id) == col(User.id)) & (col(ResetRequest.status) == "pending"),
    )
