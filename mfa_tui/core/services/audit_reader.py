"""Reading the audit log (Logs, ``audit list``): staff and the CLI only, per SPEC §1.

The screens never offer Logs to a plain user; this is the check behind them, so no other caller
can read the log by mistake either. A refusal is audited like any other.
"""

from __future__ import annotations

from mfa_tui.core.access import Action, Actor
from mfa_tui.core.audit import AuditEntry, AuditRecord, ChainReport, list_events
from mfa_tui.core.context import Context
from mfa_tui.core.services.guard import authorize, refusals_audited


class AuditReader:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def events(
        self, actor: Actor, *, limit: int | None = None, text: str | None = None
    ) -> list[AuditRecord]:
        """Newest first; ``text`` filters on actor, action or target."""
        self._authorize(actor)
        with self.ctx.db.read() as session:
            return list_events(session, limit=limit, text=text)

    def export(
        self, actor: Actor, *, limit: int | None = None, text: str | None = None
    ) -> list[AuditRecord]:
        """Every event ``text`` matches, for a file (Logs' download, ``audit list --csv``).
        A copy of the log leaves mfa-tui's hands, so who took it, and how much, is logged."""
        events = self.events(actor, limit=limit, text=text)
        details: dict[str, object] = {"events": len(events)}
        if text:
            details["filter"] = text
        with self.ctx.db.write() as session:
            self.ctx.audit.append(
                session, AuditEntry(actor.name, "audit.export", None, details), self.ctx.clock.now()
            )
        return events

    def verify(self, actor: Actor) -> ChainReport:
        """The chain checked from the first event to the head."""
        self._authorize(actor)
        with self.ctx.db.read() as session:
            return self.ctx.audit.verify(session)

    def _authorize(self, actor: Actor) -> None:
        with refusals_audited(self.ctx, actor):
            authorize(actor, Action.READ_LOGS)
