"""The console's text field: Textual's ``Input``, drawing control characters as visible symbols.

Textual draws an input's value as it is, so an escape sequence pasted into a field, or stored in a
value the form starts with (an import, another tool, an older version), would reach the terminal
raw and drive it. Here each such character is drawn as one visible symbol instead (ESC as "␛",
other C0 controls as their Control Pictures, anything else unsafe as "�"). The value itself is
untouched, and the form's rules refuse such characters with a message. Input places its cursor by
the raw value, where a control character is zero cells wide: after one, the cursor shows a cell to
the left of where it is, until the value is fixed.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from rich.highlighter import Highlighter
from rich.text import Text
from textual.widgets import Input

from mfa_tui.core.text import UNSAFE_CATEGORIES


def _symbol(char: str) -> str:
    if unicodedata.category(char) not in UNSAFE_CATEGORIES:
        return char
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)  # ␀ … ␟
    return "\u2421" if code == 0x7F else "\ufffd"


class ControlSymbols(Highlighter):
    def highlight(self, text: Text) -> None:
        if not text.plain.isprintable():  # the common case stays in C
            text.plain = "".join(_symbol(char) for char in text.plain)


class TextInput(Input):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("highlighter", ControlSymbols())
        super().__init__(*args, **kwargs)
