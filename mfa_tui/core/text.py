"""User-supplied text on its way to a terminal or a spreadsheet."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping

_CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


# What a terminal may act on, or cannot show: controls, formats (bidi overrides), line and
# paragraph separators, surrogates, private use and unassigned code points. One set for showing
# text escaped, refusing it in a field, and drawing it in an input.
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def printable(value: str | None) -> str:
    """Show control and escape characters escaped (``\\x1b``), never raw, so text cannot drive the terminal."""
    if value is None:
        return ""
    out: list[str] = []
    for char in value:
        category = unicodedata.category(char)
        if category in UNSAFE_CATEGORIES:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        elif char == "\\":
            out.append("\\\\")
        else:
            out.append(char)
    return "".join(out)


def details_text(details: Mapping[str, object] | None) -> str:
    """Audit details for people to read: JSON's shape, with each string shown by ``printable``,
    so an escape character reads ``\\x1b`` like everywhere else (JSON's own ``\\u001b`` would
    be escaped again into ``\\\\u001b``)."""
    return _shown(dict(details)) if details else ""


def _shown(value: object) -> str:
    if isinstance(value, str):
        return '"' + printable(value).replace('"', '\\"') + '"'
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_shown(str(k))}: {_shown(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_shown(item) for item in value) + "]"
    return printable(json.dumps(value, default=str))


def has_control_characters(value: str) -> bool:
    if value.isprintable():  # no "Other" or "Separator" but space: the common case, in C
        return False
    return any(unicodedata.category(char) in UNSAFE_CATEGORIES for char in value)


def csv_cell(value: object) -> str:
    """A cell that a spreadsheet will not run as a formula."""
    text = printable("" if value is None else str(value))
    if text.startswith(_CSV_FORMULA_STARTS):
        return "'" + text
    return text


def escape_like(fragment: str) -> str:
    """A fragment for SQL ``LIKE … ESCAPE '\\'``: its % and _ match themselves."""
    return fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
