"""A screen with one line and nothing to press, while a session starts or ends.

It replaces every screen of the session (their workers are cancelled with them), so nothing of
the old session can be seen or used, and nothing can be pressed twice, while the login or the
logout is recorded; Ctrl+Q still quits.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Static

from mfa_tui.ui.display import plain


class WaitingScreen(Screen[None]):
    DEFAULT_CSS = """
    WaitingScreen { align: center middle; }
    WaitingScreen #waiting-message { width: auto; }
    """

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def compose(self) -> ComposeResult:
        yield Static(plain(self.message), id="waiting-message")
