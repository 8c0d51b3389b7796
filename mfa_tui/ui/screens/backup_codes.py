"""Backup codes, shown once: the user confirms "I have saved these codes" to go on."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Static

from mfa_tui.ui.display import plain


class BackupCodesScreen(Screen[None]):
    DEFAULT_CSS = """
    BackupCodesScreen #backup-codes-box {
        width: 64;
        height: auto;
        padding: 1 2;
        border: round $warning;
    }
    BackupCodesScreen #backup-codes { margin: 1 0; text-style: bold; }
    BackupCodesScreen #saved { width: 100%; }
    """

    def __init__(self, codes: list[str]) -> None:
        super().__init__()
        self.codes = codes

    def compose(self) -> ComposeResult:
        half = (len(self.codes) + 1) // 2
        rows = [
            f"{left:<18}{right}"
            for left, right in zip(self.codes[:half], [*self.codes[half:], ""], strict=False)
        ]
        yield Header()
        with Center(), Vertical(id="backup-codes-box"):
            yield Static("Your backup codes", classes="section-title")
            yield Static(
                "Each code lets you log in once without your device. Keep them somewhere safe: "
                "they are shown only now."
            )
            yield Static(plain("\n".join(rows)), id="backup-codes")
            yield Button("I have saved these codes", id="saved", variant="primary")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Backup codes"
        self.query_one("#saved", Button).focus()

    @on(Button.Pressed, "#saved")
    def _saved(self) -> None:
        self.codes = []
        self.dismiss(None)
