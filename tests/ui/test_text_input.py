"""The console's text field draws control characters as symbols, and keeps its cursor on them.

A value holding an escape sequence (pasted, imported, or stored by another tool) is drawn with a
visible symbol per control character; the cursor and a mouse click are placed by what is drawn,
so typing lands where the person sees the cursor.
"""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult

from mfa_tui.ui.widgets.text_input import TextInput, drawn

HOSTILE = "ab\x1b[31mcd\x07"


class OneField(App[None]):
    def __init__(self, value: str, *, password: bool = False) -> None:
        super().__init__()
        self.value = value
        self.password = password

    def compose(self) -> ComposeResult:
        yield TextInput(self.value, password=self.password, id="field")


def test_every_control_character_is_one_visible_symbol() -> None:
    assert drawn(HOSTILE) == "ab␛[31mcd␇"
    assert drawn("\x7f\x9b") == "␡\ufffd"
    assert drawn("plain ünïcode 漢字") == "plain ünïcode 漢字"  # untouched
    assert len(drawn(HOSTILE)) == len(HOSTILE)  # one for one: indexes match the value's


@pytest.mark.parametrize("password", [False, True])
async def test_the_cursor_sits_after_what_is_drawn(password: bool) -> None:
    app = OneField(HOSTILE, password=password)
    async with app.run_test() as pilot:
        field = app.query_one(TextInput)
        field.focus()
        await pilot.pause()
        left = field.content_region.x
        for position in range(len(HOSTILE) + 1):
            field.cursor_position = position
            await pilot.pause()
            at_end = 1 if position == len(HOSTILE) else 0
            # Each character is drawn one cell wide, so the cursor is `position` cells in.
            assert field.cursor_screen_offset.x == left + position + at_end, position
        field.cursor_position = 3  # after "ab␛"
        await pilot.press("X")
        assert field.value == "ab\x1bX[31mcd\x07"  # typed where the cursor was shown


async def test_a_click_on_a_symbol_puts_the_cursor_there() -> None:
    app = OneField(HOSTILE + "end")
    async with app.run_test() as pilot:
        field = app.query_one(TextInput)
        # The cell of "c" (index 7): the symbols before it each take one cell.
        await pilot.click(TextInput, offset=(field.content_region.x - field.region.x + 7, 0))
        await pilot.pause()
        assert field.cursor_position == 7 and HOSTILE[7] == "c"


async def test_wide_characters_still_count_two_cells() -> None:
    app = OneField("漢\x1b字")
    async with app.run_test() as pilot:
        field = app.query_one(TextInput)
        field.focus()
        field.cursor_position = 2
        await pilot.pause()
        assert field.cursor_screen_offset.x == field.content_region.x + 3  # 漢 (2) + ␛ (1)
