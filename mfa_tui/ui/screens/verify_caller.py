"""Verify the caller: the agent checks that the person on the phone is the user.

The caller reads aloud a code from their second factor (after "Send to their factor" for an
Email/SMS code or a Duo push), or — having lost it — one of their backup codes, or a code sent to
their registered email address or phone. The screen shows verified / not verified with the time,
and the user's enrollment progress, live.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, Static

from mfa_tui.core.errors import MfaTuiError, PermissionDenied
from mfa_tui.core.models import MFA_TYPE_LABELS, MfaType
from mfa_tui.core.services.caller_check import CallerCheck, CallerStatus
from mfa_tui.core.services.users import UserView
from mfa_tui.ui.display import plain
from mfa_tui.ui.widgets.enrollment_progress import EnrollmentProgressLine
from mfa_tui.ui.widgets.text_input import TextInput


class VerifyCallerScreen(Screen[bool]):
    DEFAULT_CSS = """
    VerifyCallerScreen #verify-caller-form { padding: 0 1; }
    VerifyCallerScreen #caller-status { margin: 1 0; text-style: bold; }
    VerifyCallerScreen #caller-status.verified { color: $success; }
    VerifyCallerScreen #caller-code { width: 40; }
    VerifyCallerScreen .caller-buttons { height: auto; margin-top: 1; }
    VerifyCallerScreen .caller-buttons Button { margin-right: 1; }
    VerifyCallerScreen #caller-message { height: auto; margin-top: 1; }
    """
    BINDINGS = [Binding("escape", "back", "Back")]

    def __init__(self, user: UserView) -> None:
        super().__init__()
        self.user = user
        self.verified = False
        # Between the two prompts of a RADIUS Access-Challenge.
        self.challenge_state: str | None = None

    @property
    def actor(self):  # type: ignore[no-untyped-def]
        return self.app.signed_in.actor  # type: ignore[attr-defined]

    def compose(self) -> ComposeResult:
        kind = MFA_TYPE_LABELS[MfaType(self.user.mfa_type)]
        yield Header()
        with VerticalScroll(id="verify-caller-form"):
            yield Static(
                plain(f"Verify the caller: {self.user.username} ({kind}, {self.user.mfa_status})"),
                classes="section-title",
            )
            yield Static("Caller not verified.", id="caller-status")
            yield EnrollmentProgressLine(self.user.id, id="enrollment-progress")
            yield Label("Code the caller reads aloud")
            yield TextInput(id="caller-code", placeholder="123456 or ABCD-EFGH-JKMN")
            with Horizontal(classes="caller-buttons"):
                yield Button("Check factor code", id="check-factor", variant="primary")
                yield Button("Check backup code", id="check-backup")
                yield Button("Check sent code", id="check-lost")
            with Horizontal(classes="caller-buttons"):
                yield Button("Send to their factor", id="send-challenge")
                yield Button("Lost factor: send to their address", id="send-lost")
            yield Static("", id="caller-message", classes="form-error")
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"Verify the caller – {self.user.username}"
        self.query_one("#caller-code", Input).focus()
        self._load_status()

    @work(thread=True, exclusive=True, group="caller-status")
    def _load_status(self) -> None:
        try:
            status = CallerCheck(self.app.ctx).status(self.actor, self.user.username)  # type: ignore[attr-defined]
        except PermissionDenied as refused:
            self.app.call_from_thread(self._refused, str(refused))
            return
        except MfaTuiError as error:
            self.app.call_from_thread(self._say, str(error))
            return
        self.app.call_from_thread(self._show_status, status)

    def _refused(self, reason: str) -> None:
        """This agent may not act on the user: nothing to verify here."""
        if self.is_current:  # not if the agent already left
            self.dismiss()
        self.app.notify(reason, severity="error")

    def _show_status(self, status: CallerStatus) -> None:
        self.verified = status.verified
        line = self.query_one("#caller-status", Static)
        line.update(plain(status.message))
        line.set_class(status.verified, "verified")

    @on(Input.Submitted, "#caller-code")
    @on(Button.Pressed, "#check-factor")
    def _check_factor(self) -> None:
        self._check("factor")

    @on(Button.Pressed, "#check-backup")
    def _check_backup(self) -> None:
        self._check("backup_code")

    @on(Button.Pressed, "#check-lost")
    def _check_lost(self) -> None:
        self._check("lost_code")

    def _check(self, method: str) -> None:
        field = self.query_one("#caller-code", Input)
        code = field.value.strip()
        if not code:
            self._say("Type the code the caller reads aloud.")
            return
        field.value = ""
        self._say("Checking…")
        state = self.challenge_state if method == "factor" else None
        self._run_check(method, code, state)

    @work(thread=True, exclusive=True, group="caller-check")
    def _run_check(self, method: str, code: str, state: str | None) -> None:
        try:
            result = CallerCheck(self.app.ctx).check(  # type: ignore[attr-defined]
                self.actor, self.user.username, code, method, state
            )
        except MfaTuiError as error:
            self.app.call_from_thread(self._say, str(error))
            return
        self.app.call_from_thread(self._checked, result.status, result.message, result.state)

    def _checked(self, status: CallerStatus, message: str, state: str | None) -> None:
        self.challenge_state = state
        if status.verified:
            self._show_status(status)
            self._say("")
        else:
            self._say(message)
        self.query_one("#caller-code", Input).focus()

    @on(Button.Pressed, "#send-challenge")
    def _send_challenge(self) -> None:
        self._say("Sending…")
        self._send(lost=False)

    @on(Button.Pressed, "#send-lost")
    def _send_lost(self) -> None:
        self._say("Sending…")
        self._send(lost=True)

    @work(thread=True, exclusive=True, group="caller-send")
    def _send(self, lost: bool) -> None:
        check = CallerCheck(self.app.ctx)  # type: ignore[attr-defined]
        try:
            if lost:
                said: str | None = check.send_lost_code(self.actor, self.user.username)
            else:
                said = check.send_challenge(self.actor, self.user.username) or (
                    "Nothing to send for this factor: ask the caller to read the code it shows."
                )
        except MfaTuiError as error:
            said = str(error)
        self.app.call_from_thread(self._say, said or "")

    def action_back(self) -> None:
        self.dismiss(self.verified)

    def _say(self, message: str) -> None:
        self.query_one("#caller-message", Static).update(plain(message))
