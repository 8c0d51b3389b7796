"""Shown while the database opens (in a worker), or with the reason it could not be opened."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Center, Middle
from textual.screen import Screen
from textual.widgets import Footer, Header, Static


class StartingScreen(Screen[None]):
    def compose(self) -> ComposeResult:
        yield Header()
        with Middle(), Center():
            yield Static("Opening the database…", id="starting-message")
        yield Footer()

    def show_error(self, message: str) -> None:
        self.query_one("#starting-message", Static).update(
            f"Cannot start: {message}\n\nPress Ctrl+Q to quit."
        )
