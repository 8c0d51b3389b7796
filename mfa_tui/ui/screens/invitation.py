""" "I have an invitation": a user the helpdesk invited sets their password and enrolls here.

The invitation code stands in for the password once: the user chooses a password (twice), then
goes straight into enrollment on their own screen, so the secret is only ever shown to them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, Static

from mfa_tui.core.errors import MfaTuiError
from mfa_tui.ui.display import plain
from mfa_tui.ui.widgets.text_input import TextInput

if TYPE_CHECKING:
    from mfa_tui.core.services.access_pass import Redeemed


class InvitationScreen(Screen[None]):
    DEFAULT_CSS = """
    InvitationScreen #invitation-form {
        width: 56;
        height: auto;
        margin-top: 1;
        padding: 0 2;
        border: round $primary;
    }
    InvitationScreen #redeem { margin-top: 1; width: 100%; }
    """
    BINDINGS = [Binding("escape", "back", "Back to login")]

    def __init__(self, username: str = "") -> None:
        super().__init__()
        self.username = username

    def compose(self) -> ComposeResult:
        yield Header()
        with Center(), Vertical(id="invitation-form", classes="compact"):
            yield Static("Enrollment invitation", classes="section-title")
            yield Label("Username")
            yield TextInput(self.username, id="invite-username")
            yield Label("Invitation code")
            yield TextInput(id="invite-code", placeholder="ABCD-EFGH-JKMN-PQRS")
            yield Label("New password")
            yield TextInput(id="invite-password", password=True)
            yield Label("New password again")
            yield TextInput(id="invite-password-again", password=True)
            yield Button("Continue", id="redeem", variant="primary")
            yield Static("", id="invitation-message", classes="form-error")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Enrollment invitation"
        self.query_one("#invite-code" if self.username else "#invite-username", Input).focus()

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        if event.input.id == "invite-password-again":
            self._redeem()
        else:
            self.focus_next()

    @on(Button.Pressed, "#redeem")
    def _redeem(self) -> None:
        values = {
            name: self.query_one(f"#{name}", Input).value
            for name in (
                "invite-username",
                "invite-code",
                "invite-password",
                "invite-password-again",
            )
        }
        if not all(value.strip() for value in values.values()):
            self._say("Fill in every field.")
            return
        if values["invite-password"] != values["invite-password-again"]:
            self._say("The two passwords differ: type the same one twice.")
            return
        self.query_one("#redeem", Button).disabled = True
        self._say("Checking…")
        self._check(
            values["invite-username"].strip(), values["invite-code"], values["invite-password"]
        )

    @work(thread=True, exclusive=True)
    def _check(self, username: str, code: str, password: str) -> None:
        from mfa_tui.core.services.access_pass import AccessPasses

        try:
            ctx = self.app.wait_for_database()  # type: ignore[attr-defined]
            redeemed = AccessPasses(ctx).redeem_invitation(username, code, password)
        except MfaTuiError as error:
            self.app.call_from_thread(self._failed, str(error))
            return
        self.app.call_from_thread(self._enroll, redeemed)

    def _failed(self, message: str) -> None:
        self.query_one("#redeem", Button).disabled = False
        self.query_one("#invite-code", Input).value = ""
        self._say(message)

    def _enroll(self, redeemed: Redeemed) -> None:
        from mfa_tui.ui.screens.enrollment import EnrollmentScreen

        self.app.switch_screen(EnrollmentScreen(redeemed.user, redeemed.mfa_type))

    def action_back(self) -> None:
        self.app.show_login()  # type: ignore[attr-defined]

    def _say(self, message: str) -> None:
        self.query_one("#invitation-message", Static).update(plain(message))
