"""An administrator acting without a verified caller: the reason, for the audit log."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from mfa_tui.ui.display import plain
from mfa_tui.ui.widgets.text_input import TextInput


class OverrideReasonScreen(ModalScreen[str | None]):
    DEFAULT_CSS = """
    OverrideReasonScreen { align: center middle; }
    OverrideReasonScreen #reason-dialog {
        width: 70;
        height: auto;
        padding: 1 2;
        border: thick $warning;
        background: $surface;
    }
    OverrideReasonScreen #reason-buttons { height: auto; margin-top: 1; }
    OverrideReasonScreen #reason-buttons Button { margin-right: 2; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def compose(self) -> ComposeResult:
        with Vertical(id="reason-dialog"):
            yield Static(
                plain(
                    f"The caller is not verified. {self.what} anyway? Give the reason "
                    "(it is written to the audit log)."
                )
            )
            yield TextInput(id="reason", placeholder="e.g. ticket 4711: ID checked in person")
            yield Static("", id="reason-message", classes="form-error")
            with Horizontal(id="reason-buttons"):
                yield Button("Override", id="override", variant="error")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#reason", Input).focus()

    @on(Input.Submitted, "#reason")
    @on(Button.Pressed, "#override")
    def _override(self) -> None:
        reason = self.query_one("#reason", Input).value.strip()
        if not reason:
            self.query_one("#reason-message", Static).update("Give a reason to override.")
            return
        self.dismiss(reason)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
