"""OTP secrets and backup codes never reach the database in a usable form (SQLite file bytes, PostgreSQL rows)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import text
from sqlmodel import SQLModel, select

from mfa_tui.core import otp
from mfa_tui.core.access import Actor
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.config import Config
from mfa_tui.core.context import Context, open_context
from mfa_tui.core.errors import StorageError
from mfa_tui.core.models import MfaCredential
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.users import UserService


def _enroll_with_backup_codes(
    ctx: Context, clock: FixedClock, actor: Actor
) -> tuple[bytes, str, list[str]]:
    """bob with an active authenticator and backup codes: (raw secret, base32 secret, codes)."""
    UserService(ctx).create(actor, "bob")
    service = MfaService(ctx)
    start = service.begin_enrollment(actor, "bob", "totp")
    assert start.provisioning_uri is not None
    encoded = parse_qs(urlparse(start.provisioning_uri).query)["secret"][0]
    raw = base64.b32decode(encoded + "=" * (-len(encoded) % 8))
    code = otp.code_at(raw, clock.now().timestamp(), otp.TotpParameters())
    assert service.confirm_code(actor, start.credential_id, code)
    service.activate(actor, "bob", start.credential_id)
    codes = service.generate_backup_codes(actor, "bob")
    assert UserService(ctx).get("bob").mfa_status == "configured"
    return raw, encoded, codes


def secret_spellings(raw: bytes) -> list[bytes]:
    """An OTP secret as it could sit in a file: raw, base32 (upper, lower, grouped), UTF-16."""
    encoded = otp.base32_secret(raw)
    grouped = otp.grouped_secret(raw)
    assert " " in grouped
    return [
        raw,
        encoded.encode(),
        encoded.lower().encode(),
        grouped.encode(),
        grouped.encode("utf-16-le"),
        encoded.encode("utf-16-le"),
    ]


def code_spellings(code: str) -> list[bytes]:
    """A backup code (or pass) as printed, without its dashes, and lowercase."""
    compact = code.replace("-", "")
    return [code.encode(), compact.encode(), compact.lower().encode()]


def _forbidden(raw: bytes, encoded: str, codes: list[str]) -> list[bytes]:
    assert otp.base32_secret(raw) == encoded
    return secret_spellings(raw) + [s for code in codes for s in code_spellings(code)]


def _leaks(haystack: bytes, needles: list[bytes]) -> list[bytes]:
    return [needle for needle in needles if needle in haystack]


@pytest.fixture
def sqlite_context(tmp_path: Path, clock: FixedClock) -> Iterator[tuple[Context, Path]]:
    path = tmp_path / "mfa.db"
    context = open_context(
        Config(database_url=f"sqlite:///{path}", key_file=tmp_path / "secret.key"), clock
    )
    yield context, path
    context.close()


def test_sqlite_files_hold_no_secret_and_no_backup_code(
    sqlite_context: tuple[Context, Path], clock: FixedClock, cli_actor: Actor
) -> None:
    ctx, path = sqlite_context
    raw, encoded, codes = _enroll_with_backup_codes(ctx, clock, cli_actor)
    needles = _forbidden(raw, encoded, codes)
    wal = Path(f"{path}-wal")

    # While open: the recent writes sit in the WAL file.
    assert wal.exists() and wal.stat().st_size > 0
    files = {"db": path.read_bytes(), "wal": wal.read_bytes()}
    # The test would see a plain value: the credential row is in these bytes, only encrypted.
    with ctx.db.read() as session:
        stored = session.exec(select(MfaCredential.secret)).one()
    assert stored is not None and any(stored in content for content in files.values())
    for name, content in files.items():
        assert _leaks(content, needles) == [], f"secret material in the {name} file"

    # After a checkpoint everything is in the main file: still nothing.
    with ctx.db.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    assert _leaks(path.read_bytes(), needles) == []


def test_the_secret_is_bound_to_its_row(
    sqlite_context: tuple[Context, Path], clock: FixedClock, cli_actor: Actor
) -> None:
    """A ciphertext copied into another row does not decrypt (AES-GCM associated data)."""
    ctx, _ = sqlite_context
    _enroll_with_backup_codes(ctx, clock, cli_actor)
    UserService(ctx).create(cli_actor, "mallory")
    start = MfaService(ctx).begin_enrollment(cli_actor, "mallory", "totp")
    with ctx.db.write() as session:
        session.execute(
            text(
                "UPDATE mfa_credentials SET secret = "
                "(SELECT secret FROM mfa_credentials WHERE state = 'active') WHERE id = :id"
            ),
            {"id": start.credential_id},
        )

    with pytest.raises(StorageError, match="integrity"):
        MfaService(ctx).enrollment_view(cli_actor, start.credential_id)


def test_no_table_holds_a_secret_or_backup_code(
    ctx: Context, clock: FixedClock, cli_actor: Actor
) -> None:
    """Every column of every row, on SQLite and PostgreSQL, as the database returns it."""
    raw, encoded, codes = _enroll_with_backup_codes(ctx, clock, cli_actor)
    needles = _forbidden(raw, encoded, codes)

    with ctx.db.read() as session:
        secret_column = session.exec(select(MfaCredential.secret)).one()
        dumped = []
        for table in SQLModel.metadata.sorted_tables:
            for row in session.execute(table.select()).all():
                for value in row:
                    dumped.append(value if isinstance(value, bytes) else str(value).encode())

    assert isinstance(secret_column, bytes) and len(secret_column) > len(raw)
    assert raw not in secret_column
    assert _leaks(b"\x00".join(dumped), needles) == []
