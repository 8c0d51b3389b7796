"""Secrets at rest: AES-GCM in a versioned envelope bound to its row, and keyed hashes for codes.

Envelope layout (bytes): ``version (1) | key id length (1) | key id | nonce (12) | ciphertext+tag``.
The associated data is ``table/row id/field``, so a ciphertext copied into another row or field
does not decrypt. The key never lives in the database: only a key check value does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mfa_tui.core.errors import StorageError

ENVELOPE_VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
KEY_ENV_VAR = "MFA_TUI_SECRET_KEY"


def key_id_of(key: bytes) -> str:
    """A short public name for a key, stored in every envelope and in the key check row."""
    return hashlib.sha256(b"mfa-tui key id\x00" + key).hexdigest()[:12]


def key_check_value(key: bytes) -> str:
    """What the database keeps to recognise its key without being able to recover it."""
    return hmac.new(key, b"mfa-tui key check v1", hashlib.sha256).hexdigest()


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def decode_key(text: str, source: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise StorageError(
            f"The secret key in {source} is not a base64-encoded 32-byte key; "
            "restore the key this database was created with."
        )
    return key


def read_key_file(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        raise StorageError(f"Cannot read the key file {path}: {error}.") from error
    if mode & 0o077:
        raise StorageError(
            f"The key file {path} is readable by other users; run 'chmod 600 {path}' and try again."
        )
    return decode_key(text, str(path))


def create_key_file(path: Path) -> bytes:
    """Write a new random key, readable by its owner only. Never overwrites an existing file."""
    key = new_key()
    write_key_file(path, key)
    return key


def write_key_file(path: Path, key: bytes) -> None:
    """Create ``path`` (mode 0600, never over an existing file) holding ``key``, synced to disk."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as error:
        raise StorageError(f"The key file {path} appeared while creating it; try again.") from error
    except OSError as error:
        raise StorageError(f"Cannot create the key file {path}: {error.strerror}.") from error
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(encode_key(key) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    sync_directory(path.parent)


def side_key_file(key_file: Path) -> Path:
    """Where ``keys rotate`` writes the next key before the database switches to it."""
    return key_file.with_name(key_file.name + ".new")


def sync_directory(path: Path) -> None:
    """Make a file created or renamed in ``path`` survive a power cut (POSIX: fsync the folder)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@dataclass(frozen=True)
class SecretBox:
    """Encrypts and decrypts field values with the current key; older keys decrypt during rotation.

    ``derivation_root`` keys the subkeys (code hashes, the audit chain): the database's first key,
    kept sealed in the database after a rotation (see ``key_rotation``); ``None`` means ``key``.
    """

    key: bytes
    older_keys: tuple[bytes, ...] = ()
    derivation_root: bytes | None = None

    @property
    def key_id(self) -> str:
        return key_id_of(self.key)

    def _key_for(self, key_id: str) -> bytes:
        for candidate in (self.key, *self.older_keys):
            if key_id_of(candidate) == key_id:
                return candidate
        raise StorageError(
            f"A secret was encrypted with key {key_id}, which is not loaded; "
            "restore that key file or finish the key rotation."
        )

    def encrypt(self, plaintext: bytes, *, table: str, row_id: object, field: str) -> bytes:
        key_id = self.key_id.encode("ascii")
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = AESGCM(self.key).encrypt(nonce, plaintext, _associated_data(table, row_id, field))
        return bytes([ENVELOPE_VERSION, len(key_id)]) + key_id + nonce + sealed

    def decrypt(self, envelope: bytes, *, table: str, row_id: object, field: str) -> bytes:
        if len(envelope) < 2 or envelope[0] != ENVELOPE_VERSION:
            raise StorageError(f"The stored {field} of {table} {row_id} is not a known envelope.")
        id_length = envelope[1]
        key_id = envelope[2 : 2 + id_length].decode("ascii", errors="replace")
        nonce_start = 2 + id_length
        nonce = envelope[nonce_start : nonce_start + NONCE_BYTES]
        sealed = envelope[nonce_start + NONCE_BYTES :]
        try:
            return AESGCM(self._key_for(key_id)).decrypt(
                nonce, sealed, _associated_data(table, row_id, field)
            )
        except InvalidTag as error:
            raise StorageError(
                f"The stored {field} of {table} {row_id} failed its integrity check "
                "(edited, or moved from another row)."
            ) from error

    def keyed_hash(self, purpose: str, value: str) -> str:
        """HMAC-SHA256 for high-entropy one-time codes: lookup by hash, useless without the key."""
        subkey = self.derive(f"hash:{purpose}")
        return hmac.new(subkey, value.encode("utf-8"), hashlib.sha256).hexdigest()

    def derive(self, purpose: str) -> bytes:
        """A subkey for one purpose (the audit chain, code hashes), so no key serves two roles."""
        root = self.key if self.derivation_root is None else self.derivation_root
        return hmac.new(root, f"mfa-tui subkey {purpose}".encode(), hashlib.sha256).digest()


def _associated_data(table: str, row_id: object, field: str) -> bytes:
    return f"mfa-tui/{table}/{row_id}/{field}".encode()
