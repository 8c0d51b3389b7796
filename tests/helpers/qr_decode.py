"""Read QR codes back with a real decoder (zbar, through pyzbar), from screen text or a screenshot.

``decode_qr_text`` takes half-block text as a terminal shows it ("█" both modules dark, "▀" top
dark, "▄" bottom dark, anything else light), draws it as an image the way the terminal would (one
cell is one module wide and two modules tall) and asks zbar what it reads. When pyzbar or the zbar
library is missing, the calling test is skipped with the reason, never passed.

``screen_text`` / ``screen_strips`` read what a running Textual app shows, for Pilot tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from PIL.Image import Image
    from textual.app import App
    from textual.strip import Strip

HALF_BLOCKS = frozenset("█▀▄")
_TOP_DARK = frozenset("█▀")
_BOTTOM_DARK = frozenset("█▄")
SCALE = 8  # pixels per module: zbar reads a 1-pixel module poorly
MARGIN = 4  # extra light modules around the code, on top of the code's own quiet zone


def _zbar_decode() -> Any:
    try:
        from pyzbar.pyzbar import ZBarSymbol, decode
    except ImportError as exc:  # pyzbar raises ImportError too when libzbar0 is missing
        pytest.skip(f"QR decoding needs pyzbar and the zbar library (libzbar0): {exc}")

    def read(image: Image) -> list[str]:
        return [
            symbol.data.decode("utf-8") for symbol in decode(image, symbols=[ZBarSymbol.QRCODE])
        ]

    return read


def _blocks(lines: Sequence[str]) -> list[tuple[int, int]]:
    """(first, last) line index of each run of consecutive lines holding half-block characters."""
    runs: list[tuple[int, int]] = []
    start: int | None = None
    for index, line in enumerate([*lines, ""]):
        if HALF_BLOCKS.intersection(line):
            if start is None:
                start = index
        elif start is not None:
            runs.append((start, index - 1))
            start = None
    return runs


def qr_text_image(lines: Sequence[str]) -> Image:
    """The image a terminal shows for ``lines`` of half-block text: black modules on white."""
    from PIL import Image as PilImage

    width = max((len(line) for line in lines), default=0)
    image = PilImage.new("L", (width + 2 * MARGIN, 2 * len(lines) + 2 * MARGIN), 255)
    pixels = image.load()
    for y, line in enumerate(lines):
        for x, char in enumerate(line):
            if char in _TOP_DARK:
                pixels[MARGIN + x, MARGIN + 2 * y] = 0
            if char in _BOTTOM_DARK:
                pixels[MARGIN + x, MARGIN + 2 * y + 1] = 0
    return image.resize((image.width * SCALE, image.height * SCALE), PilImage.Resampling.NEAREST)


def _crop(lines: Sequence[str], first: int, last: int) -> list[str]:
    """Lines first..last cut to the columns between their leftmost and rightmost half-block."""
    block = lines[first : last + 1]
    columns = [index for line in block for index, char in enumerate(line) if char in HALF_BLOCKS]
    left, right = min(columns), max(columns)
    return [line[left : right + 1].ljust(right + 1 - left) for line in block]


def decode_qr_text(lines: Sequence[str]) -> list[str]:
    """Every QR code zbar reads in ``lines`` of screen text.

    The code is found as a run of consecutive lines holding half-block characters and cut to the
    columns between the leftmost and the rightmost of them, so text above or below, a left offset
    and trailing spaces do not matter. Text beside the code on the same lines is treated as light
    modules unless it is made of half-blocks. Each run is tried, largest first; the first that
    decodes is returned (an empty list when none does).
    """
    read = _zbar_decode()
    runs = sorted(_blocks(lines), key=lambda run: run[1] - run[0], reverse=True)
    for first, last in runs:
        decoded = read(qr_text_image(_crop(lines, first, last)))
        if decoded:
            return decoded
    return []


def decode_qr_png(path: str | Path) -> list[str]:
    """Every QR code zbar reads in an image file, such as a browser screenshot."""
    from PIL import Image as PilImage

    read = _zbar_decode()
    with PilImage.open(path) as opened:
        image = opened.convert("L")
    decoded = read(image)
    if decoded:
        return decoded
    # Anti-aliased glyph edges in a screenshot can blur small modules: retry sharpened and larger.
    sharpened = image.point(lambda value: 0 if value < 128 else 255)
    return read(sharpened.resize((image.width * 2, image.height * 2), PilImage.Resampling.NEAREST))


def screen_strips(app: App[Any]) -> list[Strip]:
    """The current screen of a running app, one strip (styled segments) per terminal row.

    Textual 8.2.8 has no public call for this; ``App.export_screenshot`` does the same render
    through the screen's compositor (``Screen._compositor.render_update(full=True, ...)``) and
    then turns it into SVG. Using the compositor's strips keeps the text and styles exact:
    screens below a modal show through, as on the terminal.
    """
    from textual._compositor import LayoutUpdate
    from textual.strip import Strip

    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    assert isinstance(update, LayoutUpdate)
    return [Strip.join(chops) for chops in update.strips]


def screen_text(app: App[Any]) -> list[str]:
    """The current screen of a running app as plain text: one string per row, full width."""
    return [strip.text for strip in screen_strips(app)]
