"""Login: "Username", "Password", "Log in" — then the second factor or enrollment."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, Static

from mfa_tui.core.errors import MfaTuiError
from mfa_tui.ui.display import plain
from mfa_tui.ui.widgets.text_input import TextInput

if TYPE_CHECKING:  # imported by the worker: the screen paints before the database layer loads
    from mfa_tui.core.services.auth import NextStep, PasswordOutcome


class LoginScreen(Screen[None]):
    DEFAULT_CSS = """
    LoginScreen #login-form {
        width: 50;
        height: auto;
        margin-top: 2;
        padding: 1 2;
        border: round $primary;
    }
    LoginScreen #log-in { margin-top: 1; width: 100%; }
    LoginScreen #invitation { width: 100%; }
    """

    def __init__(self, notice: str | None = None) -> None:
        super().__init__()
        self.notice = notice

    def compose(self) -> ComposeResult:
        yield Header()
        with Center(), Vertical(id="login-form", classes="compact"):
            yield Label("Username")
            yield TextInput(id="username")
            yield Label("Password")
            yield TextInput(id="password", password=True)
            yield Button("Log in", id="log-in", variant="primary")
            yield Button("I have an invitation", id="invitation", compact=True)
            yield Static(plain(self.notice or ""), id="login-message", classes="form-error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#username", Input).focus()

    @on(Input.Submitted, "#username")
    def _to_password(self) -> None:
        self.query_one("#password", Input).focus()

    @on(Input.Submitted, "#password")
    @on(Button.Pressed, "#log-in")
    def _log_in(self) -> None:
        if self.query_one("#log-in", Button).disabled:
            return  # Enter again while the password is checked (or the database cannot open)
        username = self.query_one("#username", Input).value.strip()
        password = self.query_one("#password", Input).value
        if not username or not password:
            self._say("Enter your username and password.")
            return
        self.query_one("#log-in", Button).disabled = True
        self._say("Checking…")
        self._check(username, password)

    @work(thread=True, exclusive=True)
    def _check(self, username: str, password: str) -> None:
        try:
            ctx = self.app.wait_for_database()  # type: ignore[attr-defined]
            from mfa_tui.core.services.auth import AuthService
            from mfa_tui.core.services.reset_requests import ResetRequests

            auth = AuthService(ctx)
            outcome = auth.check_password(username, password)
            step = auth.next_step(outcome.user.id) if outcome.user else None
            decision = (
                ResetRequests(self.app.ctx).decision_to_tell(outcome.user.id)
                if outcome.user
                else None
            )  # type: ignore[attr-defined]
            if decision is not None:
                self.app.call_from_thread(self.app.notify, decision.message, timeout=15)
        except MfaTuiError as error:
            self.app.call_from_thread(self._failed, str(error))
            return
        self.app.call_from_thread(self._checked, outcome, step)

    def _failed(self, message: str) -> None:
        self.query_one("#log-in", Button).disabled = False
        self._say(message)

    def _checked(self, outcome: PasswordOutcome, step: NextStep | None) -> None:
        self.query_one("#password", Input).value = ""
        if outcome.user is None or step is None:
            self._failed(outcome.message)
            return
        user = outcome.user
        if step.kind == "done":
            self.app.start_session(user, "password")  # type: ignore[attr-defined]
        elif step.kind == "second_factor":
            from mfa_tui.ui.screens.second_factor import SecondFactorScreen

            self.app.switch_screen(SecondFactorScreen(user, step.mfa_type))
        elif step.kind == "expired":
            self._failed(
                "Your second-factor setup expired before it was finished; ask the helpdesk to renew it."
            )
        else:
            from mfa_tui.ui.screens.enrollment import EnrollmentScreen

            self.app.switch_screen(EnrollmentScreen(user, step.mfa_type))

    @on(Button.Pressed, "#invitation")
    def _invitation(self) -> None:
        from mfa_tui.ui.screens.invitation import InvitationScreen

        self.app.switch_screen(InvitationScreen(self.query_one("#username", Input).value.strip()))

    def cannot_open(self, message: str) -> None:
        """The database could not be opened: say why; logging in cannot work."""
        self.query_one("#log-in", Button).disabled = True
        self._say(f"Cannot open the database: {message} Press Ctrl+Q to quit.")

    def _say(self, message: str) -> None:
        self.query_one("#login-message", Static).update(plain(message))
