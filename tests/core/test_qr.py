"""The QR code as half-block text: read back by zbar, its modules, quiet zone and size."""

from __future__ import annotations

from pathlib import Path

import pytest
import qrcode
from hypothesis import given, settings
from hypothesis import strategies as st
from qrcode.constants import ERROR_CORRECT_L

from mfa_tui.core.otp import TotpParameters, otpauth_uri
from mfa_tui.core.qr import MIN_BORDER, qr_lines, qr_size
from tests.helpers.qr_decode import decode_qr_png, decode_qr_text, qr_text_image

SECRET = bytes.fromhex("3132333435363738393031323334353637383930")  # RFC 6238's SHA1 seed
ENROLLMENT_URI = otpauth_uri(
    SECRET, issuer="mfa-tui", account="alice.lovelace0000001", params=TotpParameters()
)
REALISTIC_URI = otpauth_uri(
    SECRET,
    issuer="Example Corp",
    account="firstname.lastname@example.com",
    params=TotpParameters(digits=8, period=60, algorithm="SHA256"),
)


def modules(lines: list[str]) -> list[list[bool]]:
    """The module grid the text shows (True = dark), two module rows per text row."""
    top = {"█": True, "▀": True, "▄": False, " ": False}
    bottom = {"█": True, "▀": False, "▄": True, " ": False}
    grid: list[list[bool]] = []
    for line in lines:
        assert set(line) <= set(top), f"unexpected characters in {line!r}"
        grid.append([top[char] for char in line])
        grid.append([bottom[char] for char in line])
    return grid


def quiet_zone(grid: list[list[bool]]) -> tuple[int, int, int, int]:
    """Light modules between the code and the top, bottom, left and right edges."""
    dark_rows = [y for y, row in enumerate(grid) if any(row)]
    dark_columns = [x for x in range(len(grid[0])) if any(row[x] for row in grid)]
    return (
        dark_rows[0],
        len(grid) - 1 - dark_rows[-1],
        dark_columns[0],
        len(grid[0]) - 1 - dark_columns[-1],
    )


def test_an_otpauth_uri_is_read_back_by_zbar() -> None:
    assert len(ENROLLMENT_URI) == 99
    assert decode_qr_text(qr_lines(ENROLLMENT_URI)) == [ENROLLMENT_URI]


def test_the_characters_mark_the_dark_modules_of_the_code() -> None:
    reference = qrcode.QRCode(error_correction=ERROR_CORRECT_L, border=0)
    reference.add_data(ENROLLMENT_URI)
    reference.make(fit=True)
    expected = [[bool(cell) for cell in row] for row in reference.get_matrix()]

    grid = modules(qr_lines(ENROLLMENT_URI))
    inner = [row[MIN_BORDER : MIN_BORDER + len(expected)] for row in grid]
    assert inner[MIN_BORDER : MIN_BORDER + len(expected)] == expected
    # The finder pattern's corner is dark: the glyphs are dark modules, not light ones.
    assert grid[MIN_BORDER][MIN_BORDER] is True


@pytest.mark.parametrize(
    ("options", "wanted"),
    [({}, 2), ({"border": 0}, 2), ({"border": 1}, 2), ({"border": 3}, 3), ({"border": 4}, 4)],
)
def test_the_quiet_zone_is_at_least_two_light_modules_on_every_side(
    options: dict[str, int], wanted: int
) -> None:
    lines = qr_lines(ENROLLMENT_URI, **options)
    top, bottom, left, right = quiet_zone(modules(lines))
    assert (top, left, right) == (wanted, wanted, wanted)
    # A QR code is always an odd number of modules tall, so one more light row completes the last
    # text row.
    assert bottom == wanted + 1
    assert lines[0].strip() == ""
    assert all(line[0] == " " and line[-1] == " " for line in lines)
    assert len({len(line) for line in lines}) == 1


def test_qr_size_is_the_size_of_the_text() -> None:
    lines = qr_lines(ENROLLMENT_URI)
    assert qr_size(ENROLLMENT_URI) == (len(lines[0]), len(lines))
    assert qr_size(ENROLLMENT_URI, border=4) == (len(lines[0]) + 4, len(lines) + 2)


def test_the_enrollment_code_uses_error_correction_l_and_fits_80_by_22() -> None:
    # 99 bytes fit version 5 (37 modules) at level L; level M would need version 6 (41 modules).
    assert qr_size(ENROLLMENT_URI) == (37 + 4, 21)


@pytest.mark.xfail(
    strict=True,
    reason=(
        "otpauth_uri names the issuer twice (label and issuer=): this 158-byte URI needs QR "
        "version 7 even at level L, 49×25 cells with the quiet zone. Without the duplicate it is "
        "version 6, 45×23. No URI with this content fits 22 rows (version 5 holds 106 bytes)."
    ),
)
def test_a_realistic_code_with_non_default_parameters_fits_80_by_24() -> None:
    assert len(REALISTIC_URI) == 158
    columns, rows = qr_size(REALISTIC_URI)
    assert columns <= 80
    assert rows <= 24


def test_a_realistic_code_with_non_default_parameters_is_read_back() -> None:
    assert qr_size(REALISTIC_URI)[0] <= 80
    assert decode_qr_text(qr_lines(REALISTIC_URI)) == [REALISTIC_URI]


def test_text_around_the_code_and_a_left_offset_do_not_stop_the_decoder() -> None:
    screen = [
        "Scan this code with an authenticator app:",
        *(f"│   {line}      " for line in qr_lines(ENROLLMENT_URI)),
        "Secret: GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ",
    ]
    assert decode_qr_text(screen) == [ENROLLMENT_URI]


def test_decode_qr_png_reads_a_picture_of_the_code(tmp_path: Path) -> None:
    from PIL import ImageFilter

    picture = tmp_path / "screenshot.png"
    image = qr_text_image(qr_lines(ENROLLMENT_URI))
    # Like a browser screenshot: grey, soft edges, not a whole number of pixels per module.
    image = image.resize((image.width * 3 // 8, image.height * 3 // 8)).filter(
        ImageFilter.GaussianBlur(0.8)
    )
    image.point(lambda value: 40 + value * 170 // 255).save(picture)
    assert decode_qr_png(picture) == [ENROLLMENT_URI]


def test_too_much_data_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="too long"):
        qr_lines("x" * 3000)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=100))
def test_any_printable_ascii_text_is_read_back(text: str) -> None:
    assert decode_qr_text(qr_lines(text)) == [text]
