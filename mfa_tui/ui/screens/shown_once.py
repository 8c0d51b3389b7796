"""A one-time code (a temporary access pass, an invitation) shown once to the agent."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from mfa_tui.ui.display import plain


class ShownOnceScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    ShownOnceScreen { align: center middle; }
    ShownOnceScreen #shown-once-dialog {
        width: 64;
        height: auto;
        padding: 1 2;
        border: thick $warning;
        background: $surface;
    }
    ShownOnceScreen #shown-once-code { margin: 1 0; text-style: bold; }
    """
    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, explanation: str, code: str) -> None:
        super().__init__()
        self.explanation = explanation
        self.code = code

    def compose(self) -> ComposeResult:
        with Vertical(id="shown-once-dialog"):
            yield Static(plain(self.explanation), id="shown-once-text")
            yield Static(plain(self.code), id="shown-once-code")
            yield Static("It is shown only this once.")
            yield Button("Done", id="done", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#done", Button).focus()

    @on(Button.Pressed, "#done")
    def action_close(self) -> None:
        self.dismiss(None)
