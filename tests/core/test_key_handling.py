"""Opening a database with its key: created once, checked every time, never silently replaced."""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path

import pytest
from sqlmodel import select

from mfa_tui.core.clock import FixedClock
from mfa_tui.core.config import Config
from mfa_tui.core.context import open_context
from mfa_tui.core.crypto import (
    create_key_file,
    encode_key,
    key_check_value,
    key_id_of,
    new_key,
    read_key_file,
)
from mfa_tui.core.errors import StorageError
from mfa_tui.core.models import KeyCheck


def _key_checks(config: Config, clock: FixedClock) -> list[KeyCheck]:
    ctx = open_context(config, clock)
    try:
        with ctx.db.read() as session:
            return list(session.exec(select(KeyCheck)).all())
    finally:
        ctx.close()


def test_first_open_creates_an_owner_only_key_file_and_a_key_check(
    config: Config, clock: FixedClock
) -> None:
    assert not config.key_file.exists()
    ctx = open_context(config, clock)
    try:
        assert stat.S_IMODE(config.key_file.stat().st_mode) == 0o600
        key = read_key_file(config.key_file)
        assert ctx.box.key == key
        with ctx.db.read() as session:
            checks = session.exec(select(KeyCheck)).all()
        assert [(c.key_id, c.check_value) for c in checks] == [
            (key_id_of(key), key_check_value(key))
        ]
        assert key_check_value(key) != encode_key(key)
    finally:
        ctx.close()


def test_reopening_uses_the_same_key(config: Config, clock: FixedClock) -> None:
    first = open_context(config, clock)
    envelope = first.box.encrypt(b"secret", table="t", row_id=1, field="f")
    first.close()
    second = open_context(config, clock)
    try:
        assert second.box.decrypt(envelope, table="t", row_id=1, field="f") == b"secret"
    finally:
        second.close()
    assert len(_key_checks(config, clock)) == 1


def test_a_different_key_file_is_refused(config: Config, clock: FixedClock, tmp_path: Path) -> None:
    open_context(config, clock).close()
    other = tmp_path / "other.key"
    create_key_file(other)
    with pytest.raises(StorageError, match="does not match"):
        open_context(replace(config, key_file=other), clock)


def test_a_missing_key_file_is_refused_and_not_recreated(
    config: Config, clock: FixedClock, tmp_path: Path
) -> None:
    open_context(config, clock).close()
    missing = tmp_path / "elsewhere" / "secret.key"
    with pytest.raises(StorageError, match="No secret key") as raised:
        open_context(replace(config, key_file=missing), clock)
    assert key_id_of(read_key_file(config.key_file)) in str(raised.value)
    assert not missing.exists()
    assert not missing.parent.exists()
    # Removing the original file is the same situation.
    original = read_key_file(config.key_file)
    config.key_file.unlink()
    with pytest.raises(StorageError):
        open_context(config, clock)
    assert not config.key_file.exists()
    config.key_file.write_text(encode_key(original) + "\n")
    config.key_file.chmod(0o600)
    open_context(config, clock).close()


def test_the_environment_key_wins_over_the_key_file(
    config: Config, clock: FixedClock, tmp_path: Path
) -> None:
    env_key = new_key()
    env_config = replace(config, secret_key_text=encode_key(env_key))
    ctx = open_context(env_config, clock)
    try:
        assert ctx.box.key == env_key
    finally:
        ctx.close()
    # A database set up from the environment key does not create a key file.
    assert not config.key_file.exists()
    # A key file holding another key is ignored while the environment key is given...
    create_key_file(config.key_file)
    ctx = open_context(env_config, clock)
    try:
        assert ctx.box.key == env_key
    finally:
        ctx.close()
    # ...and that file alone does not match this database.
    with pytest.raises(StorageError, match="does not match"):
        open_context(config, clock)


def test_a_wrong_environment_key_is_refused_even_with_the_right_key_file(
    config: Config, clock: FixedClock
) -> None:
    open_context(config, clock).close()
    wrong = replace(config, secret_key_text=encode_key(new_key()))
    with pytest.raises(StorageError, match="MFA_TUI_SECRET_KEY"):
        open_context(wrong, clock)


def test_a_malformed_environment_key_is_a_storage_error(config: Config, clock: FixedClock) -> None:
    with pytest.raises(StorageError, match="MFA_TUI_SECRET_KEY"):
        open_context(replace(config, secret_key_text="too-short"), clock)


def test_config_resolve_reads_the_secret_key_from_the_environment(tmp_path: Path) -> None:
    key_text = encode_key(new_key())
    config = Config.resolve(
        environ={
            "MFA_TUI_DATABASE_URL": "sqlite:///x.db",
            "MFA_TUI_KEY_FILE": str(tmp_path / "k"),
            "MFA_TUI_SECRET_KEY": key_text,
        }
    )
    assert config.secret_key_text == key_text
    assert config.key_file == tmp_path / "k"
    assert Config.resolve(environ={"MFA_TUI_SECRET_KEY": ""}).secret_key_text is None
