"""Odd and very long Unicode through the text helpers and every field rule (hypothesis, fixed seed).

``printable`` leaves nothing a terminal would act on, ``csv_cell`` never starts a formula, and each
field rule either returns a clean value or refuses with one sentence (``InputError``), nothing else.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mfa_tui.core import validation
from mfa_tui.core.errors import InputError
from mfa_tui.core.text import csv_cell, has_control_characters, printable
from tests.helpers.fuzz import fuzz

FUZZ = fuzz(150)
UNSAFE = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}

odd_text = st.one_of(
    st.text(max_size=80),  # every code point, surrogates and unassigned included
    st.text(
        st.sampled_from(list("\x1b\x07\x9b\u202e\u2066\u200b\u2028\x00\\=+-@\t\r\n")), max_size=20
    ),
    st.text(st.characters(categories=["L", "M", "N"]), min_size=100, max_size=2000),  # very long
    st.sampled_from(
        ["Ǆ" * 64, "ß" * 64, "İ" * 64, "ﬃ" * 64, "a\u0301" * 40, "🙂" * 200, "𝔘𝔫𝔦" * 30]
    ),
)


@FUZZ
@given(odd_text)
def test_printable_leaves_nothing_a_terminal_would_act_on(value: str) -> None:
    shown = printable(value)
    assert not [c for c in shown if unicodedata.category(c) in UNSAFE]
    assert not has_control_characters(shown)
    if not any(unicodedata.category(c) in UNSAFE or c == "\\" for c in value):
        assert shown == value  # ordinary text is shown as typed


@FUZZ
@given(odd_text)
def test_a_csv_cell_never_starts_a_formula(value: str) -> None:
    cell = csv_cell(value)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert not has_control_characters(cell)


RULES: dict[str, Callable[[str], str | None]] = {
    "username": validation.username,
    "display_name": validation.display_name,
    "email": validation.email,
    "phone": validation.phone,
    "role": validation.role,
    "mfa_type": validation.mfa_type,
}


@pytest.mark.parametrize("field", list(RULES))
def test_every_field_rule_returns_a_clean_value_or_one_sentence(field: str) -> None:
    rule = RULES[field]

    @FUZZ
    @given(odd_text)
    def check(value: str) -> None:
        try:
            result = rule(value)
        except InputError as refusal:
            assert str(refusal) and "\n" not in printable(str(refusal))
            return
        if result is None:
            return
        assert not has_control_characters(result), (field, value)
        assert len(result) <= {"username": 64, "display_name": 128, "email": 254}.get(field, 16)
        assert result == result.strip()

    check()
