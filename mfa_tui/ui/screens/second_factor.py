"""The second-factor prompt: "Code", with "Use a backup code" and "Email me a code" where allowed."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, Static

from mfa_tui.core.errors import MfaTuiError
from mfa_tui.core.factors import factor_for
from mfa_tui.core.services.auth import AuthService, NextStep
from mfa_tui.core.services.mfa import (
    LOGIN_METHODS,
    MfaService,
    VerifyOutcome,
    email_code_offered,
)
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import UserView
from mfa_tui.core.settings import Settings
from mfa_tui.ui.display import plain
from mfa_tui.ui.widgets.text_input import TextInput


class SecondFactorScreen(Screen[None]):
    # What may stand in for the factor here (MfaService.verify's ``methods``).
    METHODS = LOGIN_METHODS
    DEFAULT_CSS = """
    SecondFactorScreen #second-factor-form {
        width: 56;
        height: auto;
        margin-top: 2;
        padding: 1 2;
        border: round $primary;
    }
    SecondFactorScreen #second-factor-buttons { height: auto; margin-top: 1; }
    SecondFactorScreen #second-factor-buttons Button { margin-right: 1; }
    SecondFactorScreen #second-factor-recovery { height: auto; }
    SecondFactorScreen #second-factor-recovery Button { margin-right: 1; }
    """
    BINDINGS = [Binding("escape", "back", "Back to login")]

    def __init__(self, user: UserView, mfa_type: str) -> None:
        super().__init__()
        self.user = user
        self.mfa_type = mfa_type
        # What the code in the box is: "factor" (the user's own), "backup_code", "email_code" or
        # "access_pass" (a temporary access pass: it leads only into enrollment of a new factor).
        self.mode = "factor"
        # Between the two prompts of a RADIUS Access-Challenge: handed back with the next code.
        self.challenge_state: str | None = None

    def compose(self) -> ComposeResult:
        factor = factor_for(self.mfa_type)
        yield Header()
        with Center(), Vertical(id="second-factor-form"):
            yield Static(plain(f"{factor.label} for {self.user.username}"), classes="section-title")
            yield Label(factor.code_prompt, id="code-prompt")
            yield Label("Code")
            yield TextInput(id="code", placeholder="123456")
            with Horizontal(id="second-factor-buttons"):
                yield Button("Verify", id="verify", variant="primary")
                yield Button("Use a backup code", id="use-backup-code")
                yield Button("Email me a code", id="email-code")
            with Horizontal(id="second-factor-recovery"):
                yield Button("Lost your device?", id="lost-device", variant="warning")
                yield Button("Temporary access pass", id="access-pass")
            yield Static("", id="second-factor-message", classes="form-error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#code", Input).focus()
        # Offered once the settings are read, in the worker below.
        self.query_one("#use-backup-code", Button).display = False
        self.query_one("#email-code", Button).display = False
        # A pass stands in for the factor only at a login that asked for the password, on the way
        # to enrolling a new one: never for a step-up inside a session, nor where SSH took the
        # place of the password (``mfa-tui login``).
        self.query_one("#access-pass", Button).display = (
            self.app.signed_in is None  # type: ignore[attr-defined]
            and self.app.ACCESS_PASS_AT_LOGIN  # type: ignore[attr-defined]
        )
        self._send_challenge()

    @work(thread=True, exclusive=True, group="challenge")
    def _send_challenge(self) -> None:
        """Email/SMS codes and pushes go out when the prompt opens; TOTP sends nothing. First the
        settings say which other ways to offer (off the UI thread: a database that went away
        since the password was checked is said, not a crash)."""
        try:
            settings = SettingsStore(self.app.ctx).load()  # type: ignore[attr-defined]
            self.app.call_from_thread(self._offer, settings)
            sent = MfaService(self.app.ctx).send_challenge(self.user.username)  # type: ignore[attr-defined]
        except MfaTuiError as error:
            self.app.call_from_thread(self._say, str(error))
            return
        if sent:
            self.app.call_from_thread(self._say, sent)

    def _offer(self, settings: Settings) -> None:
        self.query_one("#use-backup-code", Button).display = settings.backup_codes_enabled
        self.query_one("#email-code", Button).display = "email_code" in self.METHODS and (
            email_code_offered(settings, self.user.email, self.mfa_type)
        )

    @on(Button.Pressed, "#use-backup-code")
    def _toggle_backup(self) -> None:
        self._set_mode("factor" if self.mode == "backup_code" else "backup_code")

    @on(Button.Pressed, "#access-pass")
    def _toggle_access_pass(self) -> None:
        self._set_mode("factor" if self.mode == "access_pass" else "access_pass")

    @on(Button.Pressed, "#email-code")
    def _email_code(self) -> None:
        self._set_mode("email_code")
        self._say("Sending a code to your email address…")
        self._send_email_code()

    @work(thread=True, exclusive=True, group="challenge")
    def _send_email_code(self) -> None:
        try:
            sent = MfaService(self.app.ctx).send_email_code(self.user.username)  # type: ignore[attr-defined]
        except MfaTuiError as error:
            sent = str(error)
        self.app.call_from_thread(self._say, sent)

    def _set_mode(self, mode: str) -> None:
        self.mode = mode
        prompt, placeholder = {
            "factor": (factor_for(self.mfa_type).code_prompt, "123456"),
            "backup_code": ("Enter one of your backup codes (each works once).", "ABCD-EFGH-JKMN"),
            "email_code": ("Enter the code sent to your email address.", "123456"),
            "access_pass": (
                "Enter the temporary access pass from the helpdesk: you then set up a new factor.",
                "ABCD-EFGH-JKMN-PQRS",
            ),
        }[mode]
        self.query_one("#code-prompt", Label).update(prompt)
        self.query_one("#use-backup-code", Button).label = (
            "Use your second factor" if mode == "backup_code" else "Use a backup code"
        )
        self.query_one("#code", Input).placeholder = placeholder
        self.query_one("#code", Input).focus()

    @on(Input.Submitted, "#code")
    @on(Button.Pressed, "#verify")
    def _verify(self) -> None:
        code = self.query_one("#code", Input).value.strip()
        if not code:
            self._say("Enter the code.")
            return
        self.query_one("#verify", Button).disabled = True
        if self.mode == "access_pass" and self.app.signed_in is None:  # type: ignore[attr-defined]
            self._redeem_pass(code)
            return
        self._check(code, self.challenge_state if self.mode == "factor" else None)

    @work(thread=True, exclusive=True)
    def _redeem_pass(self, code: str) -> None:
        from mfa_tui.core.services.access_pass import AccessPasses

        try:
            redeemed = AccessPasses(self.app.ctx).redeem_tap(self.user.id, code)  # type: ignore[attr-defined]
        except MfaTuiError as error:
            self.app.call_from_thread(self._checked, VerifyOutcome(False, "error"))
            self.app.call_from_thread(self._say, str(error))
            return
        self.app.call_from_thread(self._enroll_with_pass, redeemed.mfa_type)

    def _enroll_with_pass(self, mfa_type: str) -> None:
        """Straight into enrollment of a new factor: the pass opens nothing else."""
        from mfa_tui.ui.screens.enrollment import EnrollmentScreen

        self.app.switch_screen(EnrollmentScreen(self.user, mfa_type, proved_by="access_pass"))

    @work(thread=True, exclusive=True)
    def _check(self, code: str, state: str | None = None) -> None:
        step = None
        try:
            outcome = MfaService(self.app.ctx).verify(  # type: ignore[attr-defined]
                self.user.username, code, state=state, methods=self.METHODS
            )
            if outcome.accepted:
                step = self.after_proof()
        except MfaTuiError as error:
            outcome = VerifyOutcome(False, "error")
            self.app.call_from_thread(self._say, str(error))
        self.app.call_from_thread(self._checked, outcome, step)

    def after_proof(self) -> NextStep | None:
        """In the checking worker, once a code is accepted: what the login does next."""
        return AuthService(self.app.ctx).after_second_factor(self.user.id)  # type: ignore[attr-defined]

    def _checked(self, outcome: VerifyOutcome, step: NextStep | None = None) -> None:
        self.query_one("#verify", Button).disabled = False
        self.query_one("#code", Input).value = ""
        answered_challenge = self.challenge_state is not None
        self.challenge_state = outcome.state
        if outcome.reason == "challenge":
            # The server asks a second question: its prompt replaces ours until it is answered.
            self.query_one("#code-prompt", Label).update(plain(outcome.message))
            self._say("")
            self.query_one("#code", Input).focus()
            return
        if answered_challenge and self.mode == "factor":
            self.query_one("#code-prompt", Label).update(factor_for(self.mfa_type).code_prompt)
        if outcome.accepted:
            if outcome.method == "backup_code" and outcome.backup_codes_left is not None:
                self.app.notify(f"Backup code used: {outcome.backup_codes_left} left.")
            self.accepted(outcome, step)
            return
        if outcome.reason != "error":
            self._say(outcome.message)

    def accepted(self, outcome: VerifyOutcome, step: NextStep | None) -> None:
        """At login: enroll a pending new factor now that the working one is proven, or carry on."""
        assert step is not None  # after_proof gives one at login
        method = outcome.method or self.mfa_type
        if step.kind == "enroll" and method == "email_code":
            # An emailed code proves the mailbox, not the factor a new one would replace.
            self._set_mode("factor")
            self._say(
                "To set up your new factor, enter a code from your current one (or a backup code)."
            )
            return
        if step.kind == "enroll":
            from mfa_tui.ui.screens.enrollment import EnrollmentScreen

            self.app.switch_screen(EnrollmentScreen(self.user, step.mfa_type, proved_by=method))
        else:
            self.app.start_session(self.user, method)  # type: ignore[attr-defined]

    @on(Button.Pressed, "#lost-device")
    def _lost_device(self) -> None:
        self._file_reset_request()

    @work(thread=True, exclusive=True, group="lost-device")
    def _file_reset_request(self) -> None:
        from mfa_tui.core.services.reset_requests import ResetRequests

        try:
            filed = ResetRequests(self.app.ctx).request(self.user.id)  # type: ignore[attr-defined]
        except MfaTuiError as error:
            self.app.call_from_thread(self._say, str(error))
            return
        self.app.call_from_thread(
            self._say,
            "Your request to reset your second factor was sent to the helpdesk. Once it is approved, "
            "log in again to set up a new one."
            if filed
            else "Your reset request is already waiting for the helpdesk.",
        )

    def action_back(self) -> None:
        self.app.show_login()  # type: ignore[attr-defined]

    def _say(self, message: str) -> None:
        self.query_one("#second-factor-message", Static).update(plain(message))
