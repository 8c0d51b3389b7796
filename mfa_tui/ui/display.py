"""Text for widgets: user-supplied values escaped and never parsed as markup."""

from __future__ import annotations

from rich.text import Text

from mfa_tui.core.text import printable


def plain(value: object, style: str = "") -> Text:
    """``value`` as literal text; line breaks are kept, every other control character is escaped."""
    text = "" if value is None else str(value)
    return Text("\n".join(printable(line) for line in text.split("\n")), style=style)
