"""Logs: the audit log, newest first, filterable, with an integrity check and a CSV download."""

from __future__ import annotations

import io

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Input, Static

from mfa_tui.core.access import Actor
from mfa_tui.core.audit import AuditRecord, write_csv
from mfa_tui.core.errors import MfaTuiError
from mfa_tui.core.services.audit_reader import AuditReader
from mfa_tui.core.text import details_text
from mfa_tui.ui.display import plain
from mfa_tui.ui.downloads import offer_download
from mfa_tui.ui.widgets.text_input import TextInput

PAGE = 500


class AuditLogScreen(Screen[None]):
    DEFAULT_CSS = """
    AuditLogScreen #audit-status { height: 1; color: $text-muted; padding: 0 1; }
    """
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("slash", "filter", "Filter"),
        Binding("v", "verify", "Check integrity"),
        Binding("d", "download", "Download CSV"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._debounce: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield TextInput(id="audit-filter", placeholder="/ Filter by actor, action or user")
        yield DataTable(id="audit-events", cursor_type="row", zebra_stripes=True)
        yield Static("", id="audit-status")
        yield Footer()

    @property
    def _reader(self) -> AuditReader:
        return AuditReader(self.app.ctx)  # type: ignore[attr-defined]

    @property
    def _actor(self) -> Actor:
        return self.app.signed_in.actor  # type: ignore[attr-defined,no-any-return]

    def on_mount(self) -> None:
        self.title = "Logs"
        table = self.query_one("#audit-events", DataTable)
        table.add_columns("#", "When (UTC)", "Who", "Action", "User", "Details")
        table.focus()
        self._load("")

    @work(thread=True, exclusive=True, group="audit-load")
    def _load(self, text: str) -> None:
        try:
            events = self._reader.events(self._actor, limit=PAGE, text=text or None)
        except MfaTuiError as error:
            self.app.call_from_thread(self.app.notify, str(error), severity="error")
            return
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
                Text(details_text(event.details)),  # escaped already: plain() would do it twice
            )
        shown = f"{len(events)} newest events" + (f" matching '{text}'" if text else "")
        self.query_one("#audit-status", Static).update(plain(f"{shown} · v: check integrity"))

    @on(Input.Changed, "#audit-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(0.2, lambda: self._load(event.value.strip()))

    @on(Input.Submitted, "#audit-filter")
    def _filter_done(self) -> None:
        # As on the users screen: Enter takes the keys back to the table (v, d, Escape).
        self.query_one("#audit-events", DataTable).focus()

    def action_filter(self) -> None:
        self.query_one("#audit-filter", Input).focus()

    @work(thread=True, exclusive=True, group="audit-verify")
    def action_verify(self) -> None:
        try:
            report = self._reader.verify(self._actor)
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

    def action_download(self) -> None:
        self._download(self.query_one("#audit-filter", Input).value.strip())

    @work(thread=True, exclusive=True, group="audit-download")
    def _download(self, text: str) -> None:
        """Every event the filter matches, not only the newest shown, as the CLI's --csv."""
        ctx = self.app.ctx  # type: ignore[attr-defined]
        try:
            events = self._reader.export(self._actor, text=text or None)
        except MfaTuiError as error:
            self.app.call_from_thread(self.app.notify, str(error), severity="error")
            return
        out = io.StringIO()
        write_csv(events, out)
        filename = f"mfa-tui-audit-log-{ctx.clock.now():%Y%m%d-%H%M%S}.csv"
        self.app.call_from_thread(offer_download, self.app, out.getvalue(), filename, "text/csv")

    def action_back(self) -> None:
        self.app.pop_screen()
