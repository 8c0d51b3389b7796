"""The envelope: AES-GCM bound to its row and field, key ids, rotation, keyed hashes, key files."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from mfa_tui.core.crypto import (
    ENVELOPE_VERSION,
    SecretBox,
    create_key_file,
    decode_key,
    encode_key,
    key_id_of,
    new_key,
    read_key_file,
)
from mfa_tui.core.errors import StorageError

PLAINTEXT = b"JBSWY3DPEHPK3PXP-otp-secret"
WHERE = {"table": "mfa_credentials", "row_id": "cred-1", "field": "secret"}


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(new_key())


def test_round_trip(box: SecretBox) -> None:
    envelope = box.encrypt(PLAINTEXT, **WHERE)
    assert PLAINTEXT not in envelope
    assert box.decrypt(envelope, **WHERE) == PLAINTEXT


def test_each_encryption_uses_a_fresh_nonce(box: SecretBox) -> None:
    assert box.encrypt(PLAINTEXT, **WHERE) != box.encrypt(PLAINTEXT, **WHERE)


@pytest.mark.parametrize(
    "elsewhere",
    [
        {"row_id": "cred-2"},
        {"field": "device_data"},
        {"table": "server_settings"},
    ],
)
def test_a_ciphertext_moved_to_another_row_or_field_does_not_decrypt(
    box: SecretBox, elsewhere: dict[str, str]
) -> None:
    envelope = box.encrypt(PLAINTEXT, **WHERE)
    with pytest.raises(StorageError, match="integrity check"):
        box.decrypt(envelope, **{**WHERE, **elsewhere})


@pytest.mark.parametrize("position", [-1, -20, -(16 + len(PLAINTEXT) + 1)])
def test_a_tampered_byte_fails(box: SecretBox, position: int) -> None:
    """The tag, the ciphertext and the nonce are all covered."""
    envelope = bytearray(box.encrypt(PLAINTEXT, **WHERE))
    envelope[position] ^= 0x01
    with pytest.raises(StorageError):
        box.decrypt(bytes(envelope), **WHERE)


def test_envelope_starts_with_the_version_and_carries_the_key_id(box: SecretBox) -> None:
    envelope = box.encrypt(PLAINTEXT, **WHERE)
    key_id = key_id_of(box.key).encode("ascii")
    assert envelope[0] == ENVELOPE_VERSION == 1
    assert envelope[1] == len(key_id)
    assert envelope[2 : 2 + len(key_id)] == key_id
    assert box.key_id == key_id.decode()


def test_an_unknown_envelope_version_is_refused(box: SecretBox) -> None:
    envelope = bytearray(box.encrypt(PLAINTEXT, **WHERE))
    envelope[0] = 2
    with pytest.raises(StorageError, match="not a known envelope"):
        box.decrypt(bytes(envelope), **WHERE)
    with pytest.raises(StorageError):
        box.decrypt(b"", **WHERE)


def test_an_older_key_still_decrypts_during_rotation() -> None:
    old = SecretBox(new_key())
    envelope = old.encrypt(PLAINTEXT, **WHERE)
    rotated = SecretBox(new_key(), older_keys=(old.key,))
    assert rotated.decrypt(envelope, **WHERE) == PLAINTEXT
    # New envelopes use the new key, which the old box does not have.
    fresh = rotated.encrypt(PLAINTEXT, **WHERE)
    with pytest.raises(StorageError, match="not loaded"):
        old.decrypt(fresh, **WHERE)


def test_a_ciphertext_under_a_key_that_is_not_loaded_names_that_key(box: SecretBox) -> None:
    other = SecretBox(new_key())
    with pytest.raises(StorageError, match=other.key_id):
        box.decrypt(other.encrypt(PLAINTEXT, **WHERE), **WHERE)


def test_keyed_hash_is_deterministic_per_purpose_and_differs_across_purposes(
    box: SecretBox,
) -> None:
    first = box.keyed_hash("backup-code", "ABCD2345EFGH")
    assert first == box.keyed_hash("backup-code", "ABCD2345EFGH")
    assert first == SecretBox(box.key).keyed_hash("backup-code", "ABCD2345EFGH")
    assert first != box.keyed_hash("email-code", "ABCD2345EFGH")
    assert first != box.keyed_hash("backup-code", "ABCD2345EFGJ")
    assert first != SecretBox(new_key()).keyed_hash("backup-code", "ABCD2345EFGH")
    assert len(first) == 64 and int(first, 16) >= 0


def test_derived_subkeys_differ_per_purpose(box: SecretBox) -> None:
    assert box.derive("audit-chain") != box.derive("hash:backup-code")
    assert box.derive("audit-chain") != box.key


def test_create_key_file_is_owner_only_and_holds_a_32_byte_key(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "secret.key"
    key = create_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) == 32
    assert read_key_file(path) == key


def test_create_key_file_is_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        create_key_file(tmp_path / "secret.key")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600


def test_create_key_file_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    key = create_key_file(path)
    with pytest.raises(StorageError):
        create_key_file(path)
    assert read_key_file(path) == key


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_read_key_file_refuses_a_file_others_can_read(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "secret.key"
    create_key_file(path)
    path.chmod(mode)
    with pytest.raises(StorageError, match="chmod 600"):
        read_key_file(path)


def test_read_key_file_of_a_missing_file_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="Cannot read"):
        read_key_file(tmp_path / "absent.key")


def test_decode_key_accepts_its_own_encoding() -> None:
    key = new_key()
    assert decode_key(encode_key(key) + "\n", "test") == key


@pytest.mark.parametrize(
    "text",
    [
        "not base64 at all!",
        base64.b64encode(b"x" * 16).decode(),
        base64.b64encode(b"x" * 33).decode(),
        "",
    ],
)
def test_decode_key_rejects_bad_base64_and_wrong_lengths(text: str) -> None:
    with pytest.raises(StorageError, match="32-byte key"):
        decode_key(text, "MFA_TUI_SECRET_KEY")
