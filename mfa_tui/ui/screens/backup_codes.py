"""Backup codes, shown once: the user confirms "I have saved these codes" to go on.

"Download" (d) delivers them as a text file: a browser download under ``mfa-tui serve``, a
private file in the Downloads folder in a terminal.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Static

from mfa_tui.core.text import printable
from mfa_tui.ui.display import plain
from mfa_tui.ui.downloads import offer_download


class BackupCodesScreen(Screen[None]):
    DEFAULT_CSS = """
    BackupCodesScreen #backup-codes-box {
        width: 64;
        height: auto;
        padding: 1 2;
        border: round $warning;
    }
    BackupCodesScreen #backup-codes { margin: 1 0; text-style: bold; }
    BackupCodesScreen #backup-codes-actions { height: auto; }
    BackupCodesScreen #download { width: 1fr; margin-right: 1; }
    BackupCodesScreen #saved { width: 2fr; }
    """
    BINDINGS = [Binding("d", "download", "Download")]

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
            with Horizontal(id="backup-codes-actions"):
                yield Button("Download", id="download")
                yield Button("I have saved these codes", id="saved", variant="primary")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Backup codes"
        self.query_one("#saved", Button).focus()

    @on(Button.Pressed, "#download")
    def action_download(self) -> None:
        now = self.app.ctx.clock.now()  # type: ignore[attr-defined]
        signed_in = self.app.signed_in  # type: ignore[attr-defined]
        owner = f" for {printable(signed_in.user.username)}" if signed_in else ""
        text = "\n".join(
            [
                f"mfa-tui backup codes{owner}",
                f"Saved {now:%Y-%m-%d %H:%M} UTC. Each code logs you in once without your device;",
                "keep this file somewhere safe and delete it once the codes are stored elsewhere.",
                "",
                *self.codes,
                "",
            ]
        )
        offer_download(
            self.app, text, f"mfa-tui-backup-codes-{now:%Y%m%d-%H%M%S}.txt", "text/plain"
        )

    @on(Button.Pressed, "#saved")
    def _saved(self) -> None:
        self.codes = []
        self.dismiss(None)
