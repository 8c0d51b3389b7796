"""The console's text field: Textual's ``Input``, drawing control characters as visible symbols.

Textual draws an input's value as it is, so an escape sequence pasted into a field, or stored in a
value the form starts with (an import, another tool, an older version), would reach the terminal
raw and drive it. Here each such character is drawn as one visible symbol instead (ESC as "␛",
other C0 controls as their Control Pictures, anything else unsafe as "�"). The value itself is
untouched, and the form's rules refuse such characters with a message. The cursor and a mouse
click are placed by the symbols drawn, so they stay where the eye sees them.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from rich.cells import cell_len, get_character_cell_size
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


def drawn(value: str) -> str:
    """``value`` as this field draws it: one visible symbol for each unsafe character."""
    if value.isprintable():  # the common case stays in C
        return value
    return "".join(_symbol(char) for char in value)


class ControlSymbols(Highlighter):
    def highlight(self, text: Text) -> None:
        text.plain = drawn(text.plain)


class TextInput(Input):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("highlighter", ControlSymbols())
        super().__init__(*args, **kwargs)

    def _shown(self) -> str:
        """The value as drawn, one character for each of the value's (so indexes match)."""
        return "\u2022" * len(self.value) if self.password else drawn(self.value)

    def _position_to_cell(self, position: int) -> int:
        return cell_len(self._shown()[:position])

    def _cell_offset_to_index(self, offset: int) -> int:
        scroll_x, _ = self.scroll_offset
        offset += scroll_x
        cell = 0
        for index, char in enumerate(self._shown()):
            width = get_character_cell_size(char)
            if cell <= offset < cell + width:
                return index
            cell += width
        return max(0, min(offset, len(self.value)))
