"""Authorization inside services, with every refusal audited.

A refusal found inside a write transaction cannot be audited there (the transaction rolls back),
and opening a second write would wait on the first (SQLite). So ``authorize`` raises, and
``refusals_audited`` — wrapped *around* the transaction — records the refusal after the rollback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mfa_tui.core.access import Action, Actor, Target, refusal
from mfa_tui.core.audit import AuditEntry
from mfa_tui.core.context import Context
from mfa_tui.core.errors import PermissionDenied
from mfa_tui.core.models import User


class Refusal(PermissionDenied):
    def __init__(self, reason: str, action: Action, target: str | None) -> None:
        super().__init__(reason)
        self.action = action
        self.target = target


def authorize(actor: Actor, action: Action, user: User | None = None) -> None:
    target = Target(user.id, user.role) if user is not None and user.id is not None else None
    reason = refusal(actor, action, target)
    if reason is not None:
        raise Refusal(reason, action, user.username if user is not None else None)


@contextmanager
def refusals_audited(ctx: Context, actor: Actor) -> Iterator[None]:
    try:
        yield
    except Refusal as refused:
        with ctx.db.write() as session:
            ctx.audit.append(
                session,
                AuditEntry(
                    actor.name,
                    "denied",
                    refused.target,
                    {"action": refused.action.value, "reason": str(refused)},
                ),
                ctx.clock.now(),
            )
        raise
