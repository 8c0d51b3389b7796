"""Enrolling one's own second factor: at first login, after a reset, or from Preferences.

At login it cannot be skipped: leaving logs out and the next login starts again. From
Preferences (a signed-in user changing or reconfiguring their factor), leaving goes back and the
working factor stays as it was.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Static

from mfa_tui.core.access import Actor
from mfa_tui.core.errors import MfaTuiError
from mfa_tui.core.factors import EnrollmentStart, factor_for
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import UserView
from mfa_tui.ui.display import plain
from mfa_tui.ui.widgets.enrollment_panel import EnrollmentPanel


class EnrollmentScreen(Screen[bool]):
    DEFAULT_CSS = """
    EnrollmentScreen #enrollment-steps { padding: 0 1; }
    EnrollmentScreen #explain-buttons { height: auto; margin-top: 1; }
    """
    BINDINGS = [Binding("escape", "leave", "Leave")]

    def __init__(
        self,
        user: UserView,
        mfa_type: str,
        *,
        proved_by: str | None = None,
        signed_in: bool = False,
    ) -> None:
        super().__init__()
        self.user = user
        self.mfa_type = mfa_type
        self.proved_by = proved_by  # the working factor proven at this login, if any
        self.signed_in = signed_in  # from Preferences: leaving goes back instead of logging out
        self.start: EnrollmentStart | None = None

    def actor(self, proved_now: bool = False) -> Actor:
        signed_in = self.app.signed_in  # type: ignore[attr-defined]
        proved_at = signed_in.proved_at if signed_in else None
        if proved_now or (self.proved_by and proved_at is None):
            proved_at = self.app.ctx.clock.now()  # type: ignore[attr-defined]
        return Actor(
            name=self.user.username, role=self.user.role, user_id=self.user.id, proved_at=proved_at
        )

    def compose(self) -> ComposeResult:
        label = factor_for(self.mfa_type).label
        yield Header()
        with VerticalScroll(id="enrollment-steps"):
            yield Static(plain(f"Set up {label}"), classes="section-title")
            yield Static(
                plain(
                    f"{self.user.username}, your account needs {label} as a second factor. "
                    + (
                        "Install an authenticator app on your phone (any app that supports TOTP), "
                        "then continue: you will scan a QR code and enter the code the app shows."
                        if self.mfa_type == "totp"
                        else "Continue, follow the instructions, then enter the code."
                    )
                    if not self.signed_in
                    else f"Set up {label} again. Your current factor keeps working until the new one is verified."
                ),
                id="explain",
            )
            with Horizontal(id="explain-buttons"):
                yield Button("Continue", id="continue", variant="primary")
                yield Button("Back" if self.signed_in else "Log out", id="leave")
            yield EnrollmentPanel(id="enrollment")
            yield Static("", id="enrollment-message", classes="form-error")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Set up your second factor"
        self.query_one("#enrollment", EnrollmentPanel).display = False
        self.query_one("#continue", Button).focus()

    @on(Button.Pressed, "#continue")
    def _continue(self) -> None:
        # Log out (or Back) stays: leaving must be possible at every step, not only by Escape.
        self.query_one("#continue", Button).display = False
        self._begin()

    @work(thread=True, exclusive=True)
    def _begin(self) -> None:
        try:
            start = MfaService(self.app.ctx).begin_enrollment(  # type: ignore[attr-defined]
                self.actor(), self.user.username, self.mfa_type
            )
        except MfaTuiError as error:
            self.app.call_from_thread(self._begin_failed, str(error))
            return
        self.app.call_from_thread(self._begun, start)

    def _begin_failed(self, message: str) -> None:
        # A provider that is down now (Duo, SMTP) may be back in a moment: Continue tries again.
        self._say(message)
        self.query_one("#continue", Button).display = True

    def _begun(self, start: EnrollmentStart) -> None:
        self.start = start
        panel = self.query_one("#enrollment", EnrollmentPanel)
        panel.display = True
        panel.show(start)
        code = panel.first_input()  # the code field, or a field the factor needs first
        code.focus(scroll_visible=False)
        # Scroll once the panel has its size: before that there is no region to bring into view,
        # and at 80×24 the field would stay below the fold after the full-screen QR closes.
        self.call_after_refresh(code.scroll_visible, animate=False)

    @on(EnrollmentPanel.CodeEntered)
    def _entered(self, event: EnrollmentPanel.CodeEntered) -> None:
        if self.start is not None:
            self._confirm(self.start.credential_id, event.code)

    @work(thread=True, exclusive=True)
    def _confirm(self, credential_id: str, code: str) -> None:
        ctx = self.app.ctx  # type: ignore[attr-defined]
        service = MfaService(ctx)
        try:
            if not service.confirm_code(self.actor(), credential_id, code):
                self.app.call_from_thread(
                    self.query_one("#enrollment", EnrollmentPanel).set_status,
                    "That code is not right: check it and enter the current one.",
                )
                return
            service.activate(self.actor(), self.user.username, credential_id)
            codes: list[str] = []
            first_codes = service.backup_codes_left(self.user.username) == 0
            if SettingsStore(ctx).load().backup_codes_enabled and first_codes:
                codes = service.generate_backup_codes(
                    self.actor(proved_now=True), self.user.username
                )
        except MfaTuiError as error:
            self.app.call_from_thread(self._code_refused, str(error))
            return
        self.app.call_from_thread(self._enrolled, codes)

    def _code_refused(self, message: str) -> None:
        self.query_one("#enrollment", EnrollmentPanel).clear_status()
        self._say(message)

    def _enrolled(self, codes: list[str]) -> None:
        self.start = None
        if codes:
            from mfa_tui.ui.screens.backup_codes import BackupCodesScreen

            self.app.push_screen(BackupCodesScreen(codes), lambda _: self._finish())
        else:
            self._finish()

    def _finish(self) -> None:
        if self.signed_in:
            self.app.record_proof()  # type: ignore[attr-defined]
            self.dismiss(True)
        else:
            self.app.start_session(self.user, "enrollment", landing="preferences")  # type: ignore[attr-defined]

    @on(Button.Pressed, "#leave")
    def action_leave(self) -> None:
        if self.start is not None:
            self.app.cancel_enrollment(self.actor(), self.start.credential_id)  # type: ignore[attr-defined]
        if self.signed_in:
            self.dismiss(False)
        else:
            self.app.show_login("Setup was not finished: it starts again at your next login.")  # type: ignore[attr-defined]

    def _say(self, message: str) -> None:
        self.query_one("#enrollment-message", Static).update(plain(message))
