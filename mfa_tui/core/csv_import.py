"""``users import``: a CSV file checked line by line; all or nothing unless told to skip bad lines."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mfa_tui.core import validation
from mfa_tui.core.errors import InputError
from mfa_tui.core.models import MfaStatus, MfaType

COLUMNS = ("username", "display_name", "email", "phone", "role", "mfa_type", "configure_later")
MAX_FILE_BYTES = 200 * 1024 * 1024
_TRUE = {"true", "yes", "1", "y"}
_FALSE = {"false", "no", "0", "n"}


@dataclass
class ParsedImport:
    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line number, sentence)


def read_csv(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) pairs; the header is line 1. Unreadable or malformed files raise InputError."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InputError(f"{path} is larger than 200 MB; split it into smaller files.")
        raw = path.read_bytes()
    except IsADirectoryError:
        raise InputError(f"{path} is a folder; give the path of a CSV file.") from None
    except FileNotFoundError:
        raise InputError(f"{path} does not exist; check the path.") from None
    except OSError as error:
        raise InputError(f"Cannot read {path}: {error.strerror}.") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise InputError(f"{path} is not UTF-8 text (line {line}); save it as UTF-8 CSV.") from None
    if "\x00" in text:
        raise InputError(f"{path} contains NUL bytes: it is not a CSV text file.")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if not header or not any(cell.strip() for cell in header):
            raise InputError(f"{path} is empty; it needs a header line with at least 'username'.")
        names = [cell.strip().lower() for cell in header]
        unknown = [name for name in names if name not in COLUMNS]
        if unknown:
            raise InputError(
                f"Unknown column '{unknown[0]}' in {path}; the columns are {', '.join(COLUMNS)}."
            )
        if "username" not in names:
            raise InputError(f"{path} has no 'username' column; add it to the header line.")
        if len(set(names)) != len(names):
            raise InputError(f"{path} names a column twice in its header; keep one of each.")
        rows = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(names):
                rows.append(
                    (
                        reader.line_num,
                        {"__error__": f"has {len(cells)} fields, the header has {len(names)}"},
                    )
                )
                continue
            rows.append((reader.line_num, dict(zip(names, cells, strict=True))))
    except csv.Error as error:
        raise InputError(f"{path} is not valid CSV at line {reader.line_num}: {error}.") from None
    return rows


def parse_rows(
    lines: list[tuple[int, dict[str, str]]], *, existing_keys: set[str], supported: tuple[str, ...]
) -> ParsedImport:
    result = ParsedImport()
    seen: dict[str, int] = {}
    for number, raw in lines:
        try:
            if "__error__" in raw:
                raise InputError(raw["__error__"])
            row = _parse_row(raw, supported)
        except InputError as problem:
            result.problems.append((number, str(problem)))
            continue
        key = row["username_key"]
        if key in existing_keys:
            result.problems.append((number, f"a user named '{row['username']}' already exists"))
        elif key in seen:
            result.problems.append((number, f"'{row['username']}' is also on line {seen[key]}"))
        else:
            seen[key] = number
            result.rows.append(row)
    return result


def _parse_row(raw: dict[str, str], supported: tuple[str, ...]) -> dict[str, Any]:
    name = validation.username(raw.get("username", ""))
    mfa_type = validation.supported_mfa_type(raw.get("mfa_type") or "none", supported)
    later_text = (raw.get("configure_later") or "").strip().lower()
    if later_text and later_text not in _TRUE | _FALSE:
        raise InputError(f"configure_later is true or false, not '{later_text}'")
    if mfa_type != MfaType.NONE and later_text in _FALSE:
        raise InputError(
            "a file cannot configure MFA now; set configure_later to true or leave it empty"
        )
    if mfa_type == MfaType.NONE and later_text in _TRUE:
        raise InputError("configure_later needs an mfa_type other than none")
    return {
        "username": name,
        "username_key": name.casefold(),
        "display_name": validation.display_name(raw.get("display_name")),
        "email": validation.email(raw.get("email")),
        "phone": validation.phone(raw.get("phone")),
        "role": validation.role(raw.get("role") or "user"),
        "mfa_type": mfa_type,
        "mfa_status": MfaStatus.NONE if mfa_type == MfaType.NONE else MfaStatus.PENDING,
    }
