"""Seeding: demo logins for a first look, and bulk users for benchmarks and scale tests."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import bindparam, func, text
from sqlmodel import select

from mfa_tui.core.access import Actor
from mfa_tui.core.context import Context
from mfa_tui.core.errors import InputError
from mfa_tui.core.models import MfaStatus, MfaType, Role, User
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.users import UserService

FIRST_NAMES = (
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "Edsger",
)
LAST_NAMES = (
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "Dijkstra",
)


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str
    note: str


def seed_demo(ctx: Context, actor: Actor, extra_users: int = 0) -> list[DemoLogin]:
    """Only into an empty database: demo data must never mix with real users."""
    users = UserService(ctx)
    if users.count():
        raise InputError("The database already has users; the demo seeds an empty database only.")
    logins = [
        DemoLogin("admin", _password(), Role.ADMIN, "administrator, no second factor yet"),
        DemoLogin("helpdesk", _password(), Role.HELPDESK, "helpdesk agent"),
        DemoLogin("alice", _password(), Role.USER, "Authenticator pending: enrolls at first login"),
        DemoLogin("bob", _password(), Role.USER, "no MFA"),
    ]
    for login in logins:
        users.create(
            actor,
            login.username,
            display_name=login.username.capitalize(),
            email=f"{login.username}@example.com",
            role=login.role,
            password=login.password,
        )
    MfaService(ctx).set_type(actor, "alice", MfaType.TOTP, configure_later=True)
    if extra_users:
        bulk_insert_users(ctx, extra_users)
    return logins


def generated_users(count: int, start: int = 0) -> Iterator[dict[str, object]]:
    """Deterministic users ``user0000001`` … with varied names, roles and MFA states."""
    for number in range(start, start + count):
        first = FIRST_NAMES[number % len(FIRST_NAMES)]
        last = LAST_NAMES[(number // len(FIRST_NAMES)) % len(LAST_NAMES)]
        username = f"{first.lower()}.{last.lower()}{number:07d}"
        pending = number % 3 == 0
        yield {
            "username": username,
            "username_key": username,
            "display_name": f"{first} {last}",
            "email": f"{username}@example.com",
            "role": Role.HELPDESK if number % 500 == 0 else Role.USER,
            "enabled": number % 97 != 0,
            "mfa_type": MfaType.TOTP if pending else MfaType.NONE,
            "mfa_status": MfaStatus.PENDING if pending else MfaStatus.NONE,
            "version": 1,
        }


def bulk_insert_users(ctx: Context, count: int) -> None:
    """The users of ``generated_users``, generated inside the database: a million in seconds.

    For scale tests and benchmarks only (audited as one event: these are not real people). On
    SQLite the search index is filled in one statement afterwards instead of row by row.
    """
    from mfa_tui.core.audit import AuditEntry
    from mfa_tui.core.search import bulk_index_users

    now = ctx.clock.now()
    with ctx.db.read() as session:
        start = session.exec(select(func.count()).select_from(User)).one()
    dialect = ctx.db.engine.dialect.name
    with ctx.db.write() as session:
        with bulk_index_users(session):
            session.execute(
                text(_BULK_INSERT[dialect]).bindparams(
                    bindparam("now", now, type_=User.__table__.c.created_at.type)  # type: ignore[attr-defined]
                ),
                {"first": start, "last": start + count - 1},
            )
        ctx.audit.append(session, AuditEntry("system", "users.seed", None, {"count": count}), now)


def _sql_names(names: tuple[str, ...], dialect: str, index: str) -> str:
    if dialect == "postgresql":
        return f"(ARRAY[{', '.join(repr(n) for n in names)}])[({index}) + 1]"
    return f"json_extract('{json.dumps(list(names))}', '$[' || ({index}) || ']')"


def _bulk_insert_sql(dialect: str) -> str:
    """SQL twin of ``generated_users``: the same names, roles and MFA states for each number."""
    first = _sql_names(FIRST_NAMES, dialect, f"n % {len(FIRST_NAMES)}")
    last = _sql_names(LAST_NAMES, dialect, f"(n / {len(FIRST_NAMES)}) % {len(LAST_NAMES)}")
    number = "lpad(n::text, 7, '0')" if dialect == "postgresql" else "printf('%07d', n)"
    # Typed, because psycopg sends small numbers as smallint, for which generate_series is ambiguous.
    numbers = (
        "generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS n"
        if dialect == "postgresql"
        else "seq"
    )
    prefix = (
        ""
        if dialect == "postgresql"
        else "WITH RECURSIVE seq(n) AS (SELECT :first UNION ALL SELECT n + 1 FROM seq WHERE n < :last) "
    )
    true, false = ("true", "false") if dialect == "postgresql" else ("1", "0")
    return (
        f"{prefix}INSERT INTO users (username, username_key, display_name, email, role, enabled, "
        "mfa_type, mfa_status, mfa_status_since, version, created_at, updated_at) "
        "SELECT name, name, display, name || '@example.com', "
        "CASE WHEN n % 500 = 0 THEN 'helpdesk' ELSE 'user' END, "
        f"CASE WHEN n % 97 = 0 THEN {false} ELSE {true} END, "
        "CASE WHEN n % 3 = 0 THEN 'totp' ELSE 'none' END, "
        "CASE WHEN n % 3 = 0 THEN 'pending' ELSE 'none' END, :now, 1, :now, :now "
        f"FROM (SELECT n, lower(f) || '.' || lower(l) || {number} AS name, f || ' ' || l AS display "
        f"FROM (SELECT n, {first} AS f, {last} AS l FROM {numbers}) AS named) AS generated"
    )


_BULK_INSERT = {dialect: _bulk_insert_sql(dialect) for dialect in ("sqlite", "postgresql")}


def _password() -> str:
    return secrets.token_urlsafe(12)
