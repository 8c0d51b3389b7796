"""The QrCode widget on a real (headless) Textual screen: zbar reads it, whatever the theme.

What the terminal would show is read with ``screen_strips`` / ``screen_text`` from
tests/helpers/qr_decode.py: the screen's compositor renders every row as a strip of styled
segments, the same render ``App.export_screenshot`` turns into SVG (there is no public call that
returns it as text in Textual 8.2.8).
"""

from __future__ import annotations

import pytest
from rich.color import ColorTriplet
from rich.segment import Segment
from textual.app import App, ComposeResult
from textual.geometry import Size
from textual.strip import Strip
from textual.widgets import Label

from mfa_tui.core.otp import TotpParameters, otpauth_uri
from mfa_tui.core.qr import qr_lines, qr_size
from mfa_tui.ui.widgets.qr_code import QrCode
from tests.helpers.qr_decode import decode_qr_text, screen_strips, screen_text

SECRET = bytes.fromhex("3132333435363738393031323334353637383930")
URI = otpauth_uri(
    SECRET, issuer="mfa-tui", account="alice.lovelace0000001", params=TotpParameters()
)
OTHER_URI = otpauth_uri(
    SECRET,
    issuer="Example Corp",
    account="bob",
    params=TotpParameters(digits=8, period=60, algorithm="SHA256"),
)
BLACK = ColorTriplet(0, 0, 0)
WHITE = ColorTriplet(255, 255, 255)
ABOVE = "Scan this code with an authenticator app"
BELOW = "Secret: GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ"


class QrApp(App[None]):
    CSS = "QrCode { margin: 0 3; }"

    def compose(self) -> ComposeResult:
        yield Label(ABOVE)
        yield QrCode(URI, id="qr")
        yield Label(BELOW)


def cells(strips: list[Strip]) -> list[tuple[str, Segment]]:
    """Every cell of the strips with the segment that draws it."""
    return [(char, segment) for strip in strips for segment in strip for char in segment.text]


def assert_black_on_white(strips: list[Strip]) -> None:
    drawn = cells(strips)
    assert {char for char, _ in drawn} == {"█", "▀", "▄", " "}
    for char, segment in drawn:
        style = segment.style
        assert style is not None and style.color is not None and style.bgcolor is not None
        assert (style.color.get_truecolor(), style.bgcolor.get_truecolor()) == (BLACK, WHITE), (
            f"{char!r} is drawn {style}"
        )


@pytest.mark.parametrize("theme", ["textual-dark", "textual-light", "ansi-dark"])
async def test_the_code_is_black_on_white_and_read_back_whatever_the_theme(theme: str) -> None:
    app = QrApp()
    async with app.run_test(size=(80, 24)) as pilot:
        app.theme = theme
        await pilot.pause()
        qr = app.query_one("#qr", QrCode)
        width, height = qr_size(URI)
        assert qr.region.size == Size(width, height)

        own_lines = qr.render_lines(qr.region.reset_offset)
        assert [strip.text for strip in own_lines] == qr_lines(URI)
        assert_black_on_white(own_lines)
        assert decode_qr_text([strip.text for strip in own_lines]) == [URI]

        # What the screen shows, after the compositor and the app's colour filters.
        region = qr.region
        shown = [
            strip.crop(region.x, region.right)
            for strip in screen_strips(app)[region.y : region.bottom]
        ]
        assert_black_on_white(shown)
        assert decode_qr_text(screen_text(app)) == [URI]


async def test_the_code_stays_black_on_white_under_no_color(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = QrApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        region = app.query_one("#qr", QrCode).region
        shown = [
            strip.crop(region.x, region.right)
            for strip in screen_strips(app)[region.y : region.bottom]
        ]
        assert_black_on_white(shown)
        assert decode_qr_text(screen_text(app)) == [URI]


async def test_update_shows_another_code_and_resizes() -> None:
    app = QrApp()
    async with app.run_test(size=(80, 24)) as pilot:
        qr = app.query_one("#qr", QrCode)
        qr.update(OTHER_URI)
        await pilot.pause()
        assert qr_size(OTHER_URI) == (45, 23) != qr_size(URI)
        assert qr.region.size == Size(*qr_size(OTHER_URI))
        assert decode_qr_text(screen_text(app)) == [OTHER_URI]


async def test_screen_text_is_the_whole_screen_as_shown() -> None:
    app = QrApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = screen_text(app)
        assert app.query_one("#qr", QrCode).region.x == 3

    code = qr_lines(URI)
    assert len(screen) == 24
    assert all(len(line) == 80 for line in screen)
    assert screen[0].rstrip() == ABOVE
    # The code sits under the label, after its 3-cell left margin, row for row and unwrapped.
    assert [line[3 : 3 + len(code[0])] for line in screen[1 : 1 + len(code)]] == code
    assert screen[1 + len(code)].rstrip() == BELOW
