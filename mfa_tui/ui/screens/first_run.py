"""First run: on an empty database, "Create administrator" (username, password twice)."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, Static

from mfa_tui.core import passwords
from mfa_tui.core.access import Actor
from mfa_tui.core.errors import MfaTuiError
from mfa_tui.core.models import Role
from mfa_tui.core.services.users import UserService
from mfa_tui.ui.display import plain
from mfa_tui.ui.widgets.text_input import TextInput


class FirstRunScreen(Screen[None]):
    DEFAULT_CSS = """
    FirstRunScreen #first-run-form {
        width: 60;
        height: auto;
        margin-top: 1;
        padding: 0 2;
        border: round $primary;
    }
    FirstRunScreen #create { margin-top: 1; width: 100%; }
    """

    def compose(self) -> ComposeResult:
        yield Header()
        with Center(), Vertical(id="first-run-form", classes="compact"):
            yield Static("Create administrator", classes="section-title")
            yield Static("This database is empty. Create the first administrator to begin.")
            yield Label("Username")
            yield TextInput(id="username")
            yield Label("Password")
            yield TextInput(id="password", password=True)
            yield Static("", id="password-strength")
            yield Label("Password again")
            yield TextInput(id="password-again", password=True)
            yield Button("Create administrator", id="create", variant="primary")
            yield Static("", id="first-run-message", classes="form-error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#username", Input).focus()

    @on(Input.Changed, "#password")
    def _strength(self, event: Input.Changed) -> None:
        score, word = passwords.password_strength(event.value)
        bar = "■" * score + "□" * (4 - score)
        self.query_one("#password-strength", Static).update(
            plain(f"Strength: {bar} {word}" if event.value else "")
        )

    @on(Input.Submitted, "#username")
    def _next_password(self) -> None:
        self.query_one("#password", Input).focus()

    @on(Input.Submitted, "#password")
    def _next_again(self) -> None:
        self.query_one("#password-again", Input).focus()

    @on(Input.Submitted, "#password-again")
    @on(Button.Pressed, "#create")
    def _create(self) -> None:
        username = self.query_one("#username", Input).value
        password = self.query_one("#password", Input).value
        if password != self.query_one("#password-again", Input).value:
            self._say("The two passwords differ: type the same password twice.")
            return
        self.query_one("#create", Button).disabled = True
        self._save(username, password)

    @work(thread=True, exclusive=True)
    def _save(self, username: str, password: str) -> None:
        try:
            users = UserService(self.app.ctx)  # type: ignore[attr-defined]
            if users.count():
                raise MfaTuiError("An administrator was created meanwhile; log in instead.")
            users.create(
                Actor(name="first-run", role="cli"), username, role=Role.ADMIN, password=password
            )
        except MfaTuiError as error:
            self.app.call_from_thread(self._failed, str(error))
            return
        self.app.call_from_thread(self.app.show_login, "Administrator created: log in.")  # type: ignore[attr-defined]

    def _failed(self, message: str) -> None:
        self.query_one("#create", Button).disabled = False
        self._say(message)

    def _say(self, message: str) -> None:
        self.query_one("#first-run-message", Static).update(plain(message))
