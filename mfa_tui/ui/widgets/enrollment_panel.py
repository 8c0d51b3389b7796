"""Configure-now steps for a factor: the QR code and secret, a code field and Validate.

The panel only shows and collects; the screen that owns it calls the services (admin configure
now in User edit, or the user's own enrollment) when ``CodeEntered`` arrives.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Input, Label, Static

from mfa_tui.core.factors import EnrollmentStart
from mfa_tui.core.qr import qr_size
from mfa_tui.ui.display import plain
from mfa_tui.ui.widgets.qr_code import QrCode


class EnrollmentPanel(Vertical):
    BINDINGS = [
        Binding("f2", "full_qr", "Full-screen QR"),
        Binding("f3", "copy_uri", "Copy URI"),
        Binding("f4", "copy_secret", "Copy secret"),
    ]
    DEFAULT_CSS = """
    EnrollmentPanel { height: auto; }
    EnrollmentPanel #enrollment-qr { margin: 1 0; }
    EnrollmentPanel #enrollment-code-row { height: auto; }
    EnrollmentPanel #enrollment-code { width: 20; }
    EnrollmentPanel #enrollment-status { height: auto; }
    EnrollmentPanel .verified { color: $success; }
    """

    class CodeEntered(Message):
        def __init__(self, panel: EnrollmentPanel, code: str) -> None:
            super().__init__()
            self.panel = panel
            self.code = code

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.start: EnrollmentStart | None = None
        self.verified = False

    def compose(self) -> ComposeResult:
        yield Static("", id="enrollment-instructions")
        yield QrCode("", id="enrollment-qr")
        yield Static("", id="enrollment-secret")
        yield Label("Code from the app")
        with Horizontal(id="enrollment-code-row"):
            yield Input(id="enrollment-code", placeholder="123456", max_length=12)
            yield Button("Validate", id="validate")
        yield Static("", id="enrollment-status")

    def show(self, start: EnrollmentStart) -> None:
        self.start = start
        self.verified = False
        self.query_one("#enrollment-instructions", Static).update(
            plain(
                f"{start.instructions} F2: full-screen QR · F3: copy the URI · F4: copy the secret"
            )
        )
        qr = self.query_one("#enrollment-qr", QrCode)
        qr.display = start.provisioning_uri is not None
        qr.update(start.provisioning_uri or "")
        secret = f"Secret for manual entry: {start.manual_secret}" if start.manual_secret else ""
        self.query_one("#enrollment-secret", Static).update(plain(secret))
        self.query_one("#enrollment-code", Input).disabled = False
        self.query_one("#validate", Button).disabled = False
        self.set_status("")
        if start.provisioning_uri and qr_size(start.provisioning_uri)[1] + 6 > self.app.size.height:
            # The code would not be whole on this screen next to the form: show it alone first.
            self.call_after_refresh(self.action_full_qr)

    def set_status(self, message: str, *, verified: bool = False) -> None:
        self.verified = verified or self.verified
        status = self.query_one("#enrollment-status", Static)
        status.update(plain(message))
        status.set_class(verified, "verified")
        if verified:
            self.query_one("#enrollment-code", Input).disabled = True
            self.query_one("#validate", Button).disabled = True

    def action_full_qr(self) -> None:
        if self.start is not None and self.start.provisioning_uri:
            from mfa_tui.ui.screens.qr_full import QrFullScreen

            self.app.push_screen(QrFullScreen(self.start.provisioning_uri))

    def action_copy_uri(self) -> None:
        if self.start is not None and self.start.provisioning_uri:
            self.app.copy_to_clipboard(self.start.provisioning_uri)
            self.app.notify("The otpauth URI is on the clipboard.")

    def action_copy_secret(self) -> None:
        if self.start is not None and self.start.manual_secret:
            self.app.copy_to_clipboard(self.start.manual_secret.replace(" ", ""))
            self.app.notify("The secret is on the clipboard.")

    @on(Input.Submitted, "#enrollment-code")
    @on(Button.Pressed, "#validate")
    def _entered(self, event: Message) -> None:
        event.stop()
        code = self.query_one("#enrollment-code", Input).value.strip()
        if not code:
            self.set_status("Enter the code the app shows.")
            return
        self.query_one("#enrollment-code", Input).value = ""
        self.post_message(self.CodeEntered(self, code))
