"""Passwords: argon2id only, rehashed on login when the parameters change."""

from __future__ import annotations

import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from mfa_tui.core.errors import InputError

MIN_PASSWORD_LENGTH = 10


@lru_cache(maxsize=1)
def hasher() -> PasswordHasher:
    return PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Checked when the user does not exist, so the answer takes as long as for a real user."""
    return hasher().hash(secrets.token_urlsafe(16))


def check_password_strength(password: str, username: str = "") -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(
            f"The password is too short: use at least {MIN_PASSWORD_LENGTH} characters."
        )
    if username and password.casefold() == username.casefold():
        raise InputError("The password must not be the username: choose another one.")
    if len(set(password)) < 4:
        raise InputError("The password repeats too few characters: choose a less guessable one.")


def password_strength(password: str) -> tuple[int, str]:
    """A 0–4 score and a word for live feedback while typing (not a policy: see the check above)."""
    if not password:
        return 0, "empty"
    classes = sum(
        [
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        ]
    )
    score = 0
    if len(password) >= MIN_PASSWORD_LENGTH:
        score = 1 + (classes >= 2) + (len(password) >= 14) + (classes >= 3 and len(password) >= 16)
    return score, ["too short", "weak", "fair", "good", "strong"][score]


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return (
            hasher().verify(password_hash or _dummy_hash(), password) and password_hash is not None
        )
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return hasher().check_needs_rehash(password_hash)
