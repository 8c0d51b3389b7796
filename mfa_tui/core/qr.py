"""QR codes as terminal text: built locally with ``qrcode``, drawn with half-block characters.

Each text row holds two module rows, so a terminal cell (about twice as tall as it is wide) shows
two square modules. The characters stand for **dark** modules:

    "█"  top and bottom dark     "▀"  top dark     "▄"  bottom dark     " "  both light

so the text must be drawn dark-on-light (black foreground on a white background). Drawn with a
light foreground on a dark background it shows an inverted code, which many phone scanners refuse.
The UI widget (``mfa_tui.ui.widgets.qr_code``) fixes those colours whatever the theme.

Error correction is L, the lowest level: it gives an otpauth URI the smallest version, which is
what decides whether the code fits an 80×24 terminal, and a code read from a screen is not dirty or
torn, which is what the higher levels pay for. The version is the smallest that holds the data,
and ``qrcode`` encodes a long run of upper-case letters and digits, such as the base32 secret, in
its denser alphanumeric mode.
"""

from __future__ import annotations

from functools import lru_cache

import qrcode
from qrcode.constants import ERROR_CORRECT_L
from qrcode.exceptions import DataOverflowError

# A scanner finds the code by the light space around it. The QR standard asks for 4 modules; the
# product asks for at least 2 (zbar reads it), so that more codes fit inside 80×24.
MIN_BORDER = 2

_GLYPHS = {
    (True, True): "█",
    (True, False): "▀",
    (False, True): "▄",
    (False, False): " ",
}


@lru_cache(maxsize=64)
def _render(data: str, border: int) -> tuple[str, ...]:
    code = qrcode.QRCode(version=None, error_correction=ERROR_CORRECT_L, border=0)
    code.add_data(data)
    try:
        code.make(fit=True)
    except (DataOverflowError, ValueError) as exc:  # near the limit qrcode says "Invalid version"
        raise ValueError("The text is too long for a QR code.") from exc
    modules: list[list[bool]] = [[bool(cell) for cell in row] for row in code.get_matrix()]
    width = len(modules) + 2 * border
    light_row = [False] * width
    rows = [light_row] * border
    rows += [[False] * border + row + [False] * border for row in modules]
    rows += [light_row] * border
    if len(rows) % 2:
        rows.append(light_row)
    return tuple(
        "".join(_GLYPHS[top, bottom] for top, bottom in zip(upper, lower, strict=True))
        for upper, lower in zip(rows[0::2], rows[1::2], strict=True)
    )


def qr_lines(data: str, *, border: int = MIN_BORDER) -> list[str]:
    """The QR code for ``data`` as lines of half-block text, quiet zone included.

    ``border`` is the quiet zone in modules on every side (at least ``MIN_BORDER``; a smaller
    value is raised to it). Every line has the same length. The characters mark DARK modules:
    draw them dark on a light background. Raises ValueError when ``data`` is too long to encode.

    ``data`` is encoded as UTF-8 without an ECI marker, so keep it ASCII (an otpauth URI is
    percent-encoded): decoders guess the character set of other bytes, and zbar guesses wrong.
    """
    return list(_render(data, max(border, MIN_BORDER)))


def qr_size(data: str, *, border: int = MIN_BORDER) -> tuple[int, int]:
    """(columns, rows) of terminal cells that ``qr_lines(data, border=border)`` takes."""
    lines = _render(data, max(border, MIN_BORDER))
    return len(lines[0]), len(lines)
