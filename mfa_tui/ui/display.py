"""Text for widgets: user-supplied values escaped and never parsed as markup."""

from __future__ import annotations

from rich.text import Text

from mfa_tui.core.text import printable


def plain(value: object, style: str = "") -> Text:
    return Text(printable("" if value is None else str(value)), style=style)
