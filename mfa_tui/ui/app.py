"""The console application (the screens come with the admin console work)."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Footer, Header, Static

from mfa_tui.core.config import Config
from mfa_tui.ui.resources import stylesheet


class MfaTuiApp(App[None]):
    TITLE = "mfa-tui"
    CSS_PATH = stylesheet()

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("mfa-tui: the console screens are not built yet; use 'mfa-tui --help'.")
        yield Footer()


def run_console(config: Config) -> None:
    MfaTuiApp(config).run()
