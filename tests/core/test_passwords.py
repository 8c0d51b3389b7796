"""Passwords: argon2id hashes, verification, the strength rules, rehash on parameter change."""

from __future__ import annotations

import argon2
import pytest

from mfa_tui.core.errors import InputError
from mfa_tui.core.passwords import (
    check_password_strength,
    hash_password,
    needs_rehash,
    verify_password,
)

GOOD = "correct horse battery"


@pytest.fixture(scope="module")
def good_hash() -> str:
    return hash_password(GOOD)


def test_hash_is_argon2id_and_salted(good_hash: str) -> None:
    assert good_hash.startswith("$argon2id$")
    assert GOOD not in good_hash
    assert hash_password(GOOD) != good_hash


def test_verify_accepts_the_password_and_refuses_others(good_hash: str) -> None:
    assert verify_password(good_hash, GOOD) is True
    assert verify_password(good_hash, GOOD + " ") is False
    assert verify_password(good_hash, "Correct horse battery") is False
    assert verify_password(good_hash, "") is False


def test_verify_without_a_hash_is_false() -> None:
    assert verify_password(None, GOOD) is False
    assert verify_password(None, "") is False


def test_verify_with_a_malformed_hash_is_false() -> None:
    assert verify_password("not-a-hash", GOOD) is False


@pytest.mark.parametrize(
    ("password", "username", "says"),
    [
        ("short1!", "", "too short"),
        ("", "", "too short"),
        ("AliceAlice99", "aliceALICE99", "username"),
        ("aaaaaaaaaaaaaaa", "", "too few"),
        ("abababcabcabc", "", "too few"),
    ],
)
def test_weak_passwords_are_refused(password: str, username: str, says: str) -> None:
    with pytest.raises(InputError, match=says):
        check_password_strength(password, username)


def test_acceptable_passwords_pass() -> None:
    check_password_strength(GOOD, "alice")
    check_password_strength("abcd" * 3, "")  # exactly 4 distinct characters
    check_password_strength("0123456789", "bob")  # exactly the minimum length


def test_needs_rehash_when_the_parameters_changed(good_hash: str) -> None:
    assert needs_rehash(good_hash) is False
    weaker = argon2.PasswordHasher(time_cost=1, memory_cost=8192).hash(GOOD)
    assert needs_rehash(weaker) is True
    # An old hash still verifies, so the login can rehash it.
    assert verify_password(weaker, GOOD) is True
