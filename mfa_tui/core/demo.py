"""Seeding: demo logins for a first look, and bulk users for benchmarks and scale tests."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import func
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


def bulk_insert_users(ctx: Context, count: int, batch: int = 20_000) -> None:
    """Fast inserts for scale tests; audited as one event (these are not real people)."""
    from mfa_tui.core.audit import AuditEntry

    now = ctx.clock.now()
    with ctx.db.read() as session:
        start = session.exec(select(func.count()).select_from(User)).one()
    rows = generated_users(count, start)
    with ctx.db.write() as session:
        while chunk := [
            {**row, "created_at": now, "updated_at": now, "mfa_status_since": now}
            for _, row in zip(range(batch), rows, strict=False)
        ]:
            session.execute(User.__table__.insert(), chunk)  # type: ignore[attr-defined]
        ctx.audit.append(session, AuditEntry("system", "users.seed", None, {"count": count}), now)


def _password() -> str:
    return secrets.token_urlsafe(12)
