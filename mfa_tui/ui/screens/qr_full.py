"""The QR code alone on the screen, so it is whole even at 80×24."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Middle
from textual.screen import ModalScreen
from textual.widgets import Footer

from mfa_tui.ui.widgets.qr_code import QrCode


class QrFullScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    QrFullScreen { align: center middle; background: #ffffff; }
    """
    BINDINGS = [
        Binding("escape", "dismiss", "Back"),
        Binding("f", "dismiss", "Back", show=False),
    ]

    def __init__(self, data: str) -> None:
        super().__init__()
        self.data = data

    def compose(self) -> ComposeResult:
        with Middle(), Center():
            yield QrCode(self.data, id="full-qr")
        # Shows "esc Back". Codes are an odd number of rows tall, so one that fits 24 rows
        # still fits the 23 left above the footer.
        yield Footer()

    def on_mount(self) -> None:
        # Inline: the app stylesheet's `Screen { background: $surface }` outranks DEFAULT_CSS.
        self.styles.background = "#ffffff"
