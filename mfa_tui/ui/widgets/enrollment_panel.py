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

from mfa_tui.core.factors import EnrollmentField, EnrollmentStart, enrollment_code
from mfa_tui.core.qr import qr_size
from mfa_tui.ui.display import plain
from mfa_tui.ui.widgets.qr_code import QrCode
from mfa_tui.ui.widgets.text_input import TextInput


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
    EnrollmentPanel #enrollment-fields { height: auto; }
    EnrollmentPanel .enrollment-field { width: 48; }
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
        # The factor's extra inputs (EnrollmentStart.fields), e.g. a Yubikey's AES key.
        yield Vertical(id="enrollment-fields")
        yield Label("Code from the app", id="enrollment-code-label")
        with Horizontal(id="enrollment-code-row"):
            # Long enough for a Yubico OTP (44 characters).
            yield TextInput(id="enrollment-code", placeholder="123456", max_length=64)
            yield Button("Validate", id="validate")
        yield Static("", id="enrollment-status")

    def show(self, start: EnrollmentStart) -> None:
        self.start = start
        self.verified = False
        keys = " F2: full-screen QR · F3: copy the URI · F4: copy the secret"
        self.query_one("#enrollment-instructions", Static).update(
            plain(f"{start.instructions}{keys if start.provisioning_uri else ''}")
        )
        self._show_fields(start.fields)
        # The instructions say where the code comes from; "the app" is only right for a QR.
        self.query_one("#enrollment-code-label", Label).update(
            "Code from the app" if start.provisioning_uri else "Code"
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

    def clear_status(self) -> None:
        """When the reason a code was refused is said elsewhere (under the form): a verdict on an
        earlier code must not stay by the field."""
        self.set_status("")

    def set_status(self, message: str, *, verified: bool = False) -> None:
        self.verified = verified or self.verified
        status = self.query_one("#enrollment-status", Static)
        status.update(plain(message))
        status.set_class(verified, "verified")
        if message:
            # The line under the code field can be just below the view (at 80×24 it is).
            self.call_after_refresh(status.scroll_visible, animate=False)
        if verified:
            self.query_one("#enrollment-code", Input).disabled = True
            self.query_one("#validate", Button).disabled = True
            for field in self.query(".enrollment-field").results(Input):
                field.disabled = True

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

    def _show_fields(self, fields: tuple[EnrollmentField, ...]) -> None:
        box = self.query_one("#enrollment-fields", Vertical)
        shown = [field.id for field in box.query(".enrollment-field")]
        wanted = [f"enrollment-field-{field.name}" for field in fields]
        if shown == wanted:  # the same factor again: only start afresh
            for field in box.query(".enrollment-field").results(Input):
                field.value = ""
                field.disabled = False
            return
        box.remove_children()
        for field, field_id in zip(fields, wanted, strict=True):
            box.mount(Label(plain(field.label)))
            box.mount(TextInput(id=field_id, password=field.secret, classes="enrollment-field"))

    def first_input(self) -> Input:
        """Where typing starts: the first extra field still empty, else the code field."""
        for field in self.query(".enrollment-field").results(Input):
            if not field.value:
                return field
        return self.query_one("#enrollment-code", Input)

    @on(Input.Submitted, ".enrollment-field")
    def _next_field(self, event: Input.Submitted) -> None:
        event.stop()
        self.screen.focus_next()

    @on(Input.Submitted, "#enrollment-code")
    @on(Button.Pressed, "#validate")
    def _entered(self, event: Message) -> None:
        event.stop()
        code = self.query_one("#enrollment-code", Input).value.strip()
        values: dict[str, str] = {}
        for field in self.start.fields if self.start is not None else ():
            value = self.query_one(f"#enrollment-field-{field.name}", Input).value.strip()
            if not value:
                self.set_status(f"Enter the {field.label}.")
                self.query_one(f"#enrollment-field-{field.name}", Input).focus()
                return
            values[field.name] = value
        if not code:
            self.set_status("Enter the code the app shows.")
            return
        self.query_one("#enrollment-code", Input).value = ""
        self.post_message(self.CodeEntered(self, enrollment_code(code, values)))
