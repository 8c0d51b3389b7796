"""A QR code drawn as dark modules on a light background, whatever the theme.

The half-block text from ``mfa_tui.core.qr`` marks dark modules, so it is drawn with fixed colours:
pure black on pure white, given as RGB rather than the ANSI names "black"/"white", which terminal
palettes are free to remap (some make ANSI white a mid grey). Under ``NO_COLOR`` Textual turns
colours to greys, which keeps black and white as they are.

The widget uses Textual's line API: one strip per text row, never wrapped, and its size is
exactly the code's size, quiet zone included.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from mfa_tui.core.qr import qr_lines, qr_size

QR_STYLE = Style(color="#000000", bgcolor="#ffffff")
"""Dark modules (the glyphs) in black, light modules (the background) in white."""


class QrCode(Widget):
    """The QR code of ``data``, e.g. an otpauth URI. ``update(data)`` shows another one."""

    DEFAULT_CSS = """
    QrCode {
        width: auto;
        height: auto;
    }
    """

    data: reactive[str] = reactive("", layout=True)

    def __init__(
        self,
        data: str,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.set_reactive(QrCode.data, data)

    def update(self, data: str) -> None:
        """Show the code of ``data`` instead (the widget resizes to fit it)."""
        self.data = data

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return qr_size(self.data)[0]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return qr_size(self.data)[1]

    def render_line(self, y: int) -> Strip:
        lines = qr_lines(self.data)
        if 0 <= y < len(lines):
            return Strip([Segment(lines[y], QR_STYLE)], len(lines[y]))
        return Strip.blank(self.size.width, self.rich_style)
