"""User-supplied text never drives the terminal and never starts a spreadsheet formula."""

from __future__ import annotations

import pytest

from mfa_tui.core.text import csv_cell, details_text, has_control_characters, printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("\x1b]0;owned\x07", "\\x1b]0;owned\\x07"),
        ("a\x00b", "a\\x00b"),
        ("line\nbreak\rreturn\ttab", "line\\x0abreak\\x0dreturn\\x09tab"),
        ("\x08\x0c", "\\x08\\x0c"),
        ("del\x7f", "del\\x7f"),
        ("\x9b31m", "\\x9b31m"),  # C1 CSI
        ("user\u202etxt.exe", "user\\u202etxt.exe"),
        ("\u2066isolate\u2069", "\\u2066isolate\\u2069"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("sep\u2028line", "sep\\u2028line"),
        ("back\\slash", "back\\\\slash"),
    ],
)
def test_printable_escapes_controls(raw: str, shown: str) -> None:
    out = printable(raw)
    assert out == shown
    assert not has_control_characters(out)


@pytest.mark.parametrize("kept", ["Zoë 李", "José Ñúñez", "Ελένη", "Ωmega ✓ 🙂", "O'Brien-Smith"])
def test_printable_keeps_normal_unicode(kept: str) -> None:
    assert printable(kept) == kept


def test_printable_of_none_is_empty() -> None:
    assert printable(None) == ""


def test_escaped_text_is_distinguishable_from_typed_backslashes() -> None:
    assert printable("\\x1b") != printable("\x1b")


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1 555 0100", "'+1 555 0100"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("alice", "alice"),
        ("a=b", "a=b"),
        ("Zoë 李", "Zoë 李"),
        (None, ""),
        (42, "42"),
    ],
)
def test_csv_cell_neutralises_formulas(value: object, cell: str) -> None:
    assert csv_cell(value) == cell


def test_csv_cell_also_escapes_controls() -> None:
    assert csv_cell("\x1b[2J=1") == "\\x1b[2J=1"
    assert csv_cell("\t=1") == "\\x09=1"  # the tab is shown escaped, so no formula starts


def test_audit_details_read_as_json_with_text_escaped_once() -> None:
    details = {
        "reason": "caller said\x1b[2J\x1b]8;;http://evil\x07",
        "count": 3,
        "fields": ["a\\b", '"quoted"'],
        "nested": {"none": None, "ok": True},
    }
    assert details_text(details) == (
        '{"reason": "caller said\\x1b[2J\\x1b]8;;http://evil\\x07", "count": 3, '
        '"fields": ["a\\\\b", "\\"quoted\\""], "nested": {"none": null, "ok": true}}'
    )
    assert details_text({}) == details_text(None) == ""
    # Whatever the details hold, nothing a terminal acts on comes out.
    assert not has_control_characters(details_text({"\x9b": "\u202e\x00", "k": ["\x1b"]}))
