"""Enrollment at login: a user whose MFA is pending sets it up before anything else.

Leaving logs out (it cannot be skipped); the next login starts it again.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from mfa_tui.core.access import Actor
from mfa_tui.core.errors import MfaTuiError
from mfa_tui.core.factors import EnrollmentStart, factor_for
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.users import UserView
from mfa_tui.ui.display import plain
from mfa_tui.ui.widgets.enrollment_panel import EnrollmentPanel


class EnrollmentScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "leave", "Log out"),
    ]

    def __init__(self, user: UserView, mfa_type: str) -> None:
        super().__init__()
        self.user = user
        self.mfa_type = mfa_type
        self.start: EnrollmentStart | None = None

    @property
    def actor(self) -> Actor:
        return Actor(name=self.user.username, role=self.user.role, user_id=self.user.id)

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static(
                plain(
                    f"Set up {factor_for(self.mfa_type).label} for {self.user.username}. "
                    "Your account needs a second factor before you can continue."
                ),
                classes="section-title",
            )
            yield EnrollmentPanel(id="enrollment")
            yield Static("", id="enrollment-message", classes="form-error")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Set up your second factor"
        self._begin()

    @work(thread=True, exclusive=True)
    def _begin(self) -> None:
        try:
            start = MfaService(self.app.ctx).begin_enrollment(
                self.actor, self.user.username, self.mfa_type
            )  # type: ignore[attr-defined]
        except MfaTuiError as error:
            self.app.call_from_thread(self._say, str(error))
            return
        self.app.call_from_thread(self._begun, start)

    def _begun(self, start: EnrollmentStart) -> None:
        self.start = start
        self.query_one("#enrollment", EnrollmentPanel).show(start)
        self.query_one("#enrollment-code").focus()

    @on(EnrollmentPanel.CodeEntered)
    def _entered(self, event: EnrollmentPanel.CodeEntered) -> None:
        if self.start is not None:
            self._confirm(self.start.credential_id, event.code)

    @work(thread=True, exclusive=True)
    def _confirm(self, credential_id: str, code: str) -> None:
        service = MfaService(self.app.ctx)  # type: ignore[attr-defined]
        try:
            if not service.confirm_code(self.actor, credential_id, code):
                self.app.call_from_thread(
                    self.query_one("#enrollment", EnrollmentPanel).set_status,
                    "That code is not right: check the app's clock and enter the current code.",
                )
                return
            service.activate(self.actor, self.user.username, credential_id)
        except MfaTuiError as error:
            self.app.call_from_thread(self._say, str(error))
            return
        self.app.call_from_thread(self.app.start_session, self.user, "enrollment")  # type: ignore[attr-defined]

    def action_leave(self) -> None:
        if self.start is not None:
            MfaService(self.app.ctx).cancel_enrollment(self.actor, self.start.credential_id)  # type: ignore[attr-defined]
        self.app.show_login("Setup was not finished: it starts again at your next login.")  # type: ignore[attr-defined]

    def _say(self, message: str) -> None:
        self.query_one("#enrollment-message", Static).update(plain(message))
