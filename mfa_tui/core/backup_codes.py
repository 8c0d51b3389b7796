"""Backup codes: 12 characters from an alphabet without look-alikes, shown once, stored as keyed hashes."""

from __future__ import annotations

import secrets

# No 0/O, 1/I/L: a code read aloud or copied from paper must not be ambiguous.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 12
HASH_PURPOSE = "backup-code"


def new_codes(count: int) -> list[str]:
    return [
        format_code("".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH)))
        for _ in range(count)
    ]


def format_code(raw: str) -> str:
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def normalize(text: str) -> str | None:
    """The canonical form of what someone typed, or None if it cannot be a backup code."""
    compact = text.strip().upper().replace("-", "").replace(" ", "")
    if len(compact) != CODE_LENGTH or any(char not in ALPHABET for char in compact):
        return None
    return compact
