"""Shown while the database opens (in a worker), or with the reason it could not be opened."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Center, Middle
from textual.screen import Screen
from textual.widgets import Footer, Static


class StartingScreen(Screen[None]):
    # No Header: this screen can be replaced before a Header finishes mounting (a database that
    # opens at once), and Textual 8.2.8's Header then fails looking for its title (NoMatches).
    def compose(self) -> ComposeResult:
        with Middle(), Center():
            yield Static("Opening the database…", id="starting-message")
        yield Footer()

    def show_error(self, message: str) -> None:
        self.query_one("#starting-message", Static).update(
            f"Cannot start: {message}\n\nPress Ctrl+Q to quit."
        )
