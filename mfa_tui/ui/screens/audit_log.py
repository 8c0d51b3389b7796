"""Logs: the audit log, newest first, filterable, with an integrity check."""

from __future__ import annotations

import json

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Input, Static

from mfa_tui.core.audit import AuditRecord, list_events
from mfa_tui.core.errors import MfaTuiError
from mfa_tui.ui.display import plain

PAGE = 500


class AuditLogScreen(Screen[None]):
    DEFAULT_CSS = """
    AuditLogScreen #audit-status { height: 1; color: $text-muted; padding: 0 1; }
    """
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("slash", "filter", "Filter"),
        Binding("v", "verify", "Check integrity"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._debounce: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(id="audit-filter", placeholder="/ Filter by actor, action or user")
        yield DataTable(id="audit-events", cursor_type="row", zebra_stripes=True)
        yield Static("", id="audit-status")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Logs"
        table = self.query_one("#audit-events", DataTable)
        table.add_columns("#", "When (UTC)", "Who", "Action", "User", "Details")
        table.focus()
        self._load("")

    @work(thread=True, exclusive=True, group="audit-load")
    def _load(self, text: str) -> None:
        ctx = self.app.ctx  # type: ignore[attr-defined]
        with ctx.db.read() as session:
            events = list_events(session, limit=PAGE, text=text or None)
        self.app.call_from_thread(self._show, events, text)

    def _show(self, events: list[AuditRecord], text: str) -> None:
        table = self.query_one("#audit-events", DataTable)
        table.clear()
        for event in events:
            table.add_row(
                str(event.seq),
                f"{event.at:%Y-%m-%d %H:%M:%S}",
                plain(event.actor),
                event.action,
                plain(event.target or ""),
                plain(json.dumps(event.details, ensure_ascii=False) if event.details else ""),
            )
        shown = f"{len(events)} newest events" + (f" matching '{text}'" if text else "")
        self.query_one("#audit-status", Static).update(plain(f"{shown} · v: check integrity"))

    @on(Input.Changed, "#audit-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(0.2, lambda: self._load(event.value.strip()))

    def action_filter(self) -> None:
        self.query_one("#audit-filter", Input).focus()

    @work(thread=True, exclusive=True, group="audit-verify")
    def action_verify(self) -> None:
        ctx = self.app.ctx  # type: ignore[attr-defined]
        try:
            with ctx.db.read() as session:
                report = ctx.audit.verify(session)
        except MfaTuiError as error:
            self.app.call_from_thread(self.app.notify, str(error), severity="error")
            return
        if report.ok:
            message, severity = f"The audit chain is intact: {report.count} events.", "information"
        else:
            message, severity = (
                f"The audit log is broken at row {report.first_bad_seq}: {report.problem}.",
                "error",
            )
        self.app.call_from_thread(self.app.notify, message, severity=severity)

    def action_back(self) -> None:
        self.app.pop_screen()
