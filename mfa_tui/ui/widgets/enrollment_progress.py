"""A line that follows one user's enrollment live: waiting for login → QR shown → code verified →
backup codes saved.

It polls ``enrollment_progress`` once a second in a worker. Polling, not PostgreSQL
LISTEN/NOTIFY: it works the same on SQLite (where several consoles on several machines share a
file and nothing can notify), each poll is one small indexed read, and there is no connection to
keep listening or to re-establish after a network blip.
"""

from __future__ import annotations

from textual import work
from textual.widgets import Static

from mfa_tui.core.errors import MfaTuiError
from mfa_tui.ui.display import plain

POLL_SECONDS = 1.0


class EnrollmentProgressLine(Static):
    DEFAULT_CSS = """
    EnrollmentProgressLine { height: auto; color: $text-muted; }
    """

    def __init__(self, user_id: int, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.user_id = user_id
        self.stage: str | None = None
        self.stopped = False

    def on_mount(self) -> None:
        self.display = False  # until the first answer: no line at all for "none"
        self.poll()
        self.set_interval(POLL_SECONDS, self.poll)

    @work(thread=True, exclusive=True, group="enrollment-progress")
    def poll(self) -> None:
        from mfa_tui.core.services.enrollment_progress import enrollment_progress

        try:
            progress = enrollment_progress(self.app.ctx, self.user_id)  # type: ignore[attr-defined]
        except MfaTuiError:
            return  # the next poll tries again
        self.app.call_from_thread(self._show, progress.stage, progress.label)

    def stop(self) -> None:
        """Hide the line for good (the agent enrolls the user here themselves)."""
        self.stopped = True
        self.display = False

    def _show(self, stage: str, label: str) -> None:
        if stage != self.stage and not self.stopped:
            self.stage = stage
            self.display = stage != "none"
            self.update(plain(f"Enrollment: {label}"))
