"""Opening mfa-tui: the database (upgraded to the current schema) and its secret key.

A missing or wrong key is a clear error, never a silently regenerated key: a key file is only
created for a database that has never had one. A key rotation that was killed half-way is finished
or rolled back here, before the key is checked (see ``key_rotation``).
"""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from mfa_tui.core import schema
from mfa_tui.core.audit import AuditLog
from mfa_tui.core.clock import Clock, SystemClock
from mfa_tui.core.config import SECRET_KEY_ENV_VAR, Config
from mfa_tui.core.crypto import (
    SecretBox,
    create_key_file,
    decode_key,
    key_check_value,
    key_id_of,
    read_key_file,
    side_key_file,
)
from mfa_tui.core.db import Database, database_error, make_engine
from mfa_tui.core.errors import StorageError
from mfa_tui.core.models import KeyCheck, ServerSetting

# After a key rotation the subkeys keep coming from the database's first key, stored sealed under
# the current key in this server_settings row (not a setting: ``SettingsStore`` ignores it).
DERIVATION_ROOT_SETTING = "internal.derivation_root"
SETTINGS_TABLE = ServerSetting.__tablename__
SEALED_PREFIX = "enc:"
KEY_ROTATED = "The secret key was rotated by another process; restart mfa-tui."


@dataclass
class Context:
    """What every service needs: the database, the key, the audit log and the clock."""

    db: Database
    box: SecretBox
    clock: Clock = field(default_factory=SystemClock)

    @property
    def audit(self) -> AuditLog:
        return AuditLog(self.box)

    def require_current_key(self, session: Session, *, exclusive: bool = False) -> None:
        """Refuse to seal a secret in this write transaction with a key the database left behind.

        A console or ``serve`` started before a ``keys rotate`` still holds the old key, which
        nothing can open once the key file is replaced. Call it first in the transaction: the key
        check rows stay locked until it ends (shared here, ``exclusive`` for the rotation itself),
        so on PostgreSQL a rotation either waits for this transaction and re-seals what it wrote,
        or commits first and this one is refused; SQLite serialises write transactions anyway.
        """
        checks = session.exec(select(KeyCheck).with_for_update(read=not exclusive)).all()
        if not any(check.key_id == self.box.key_id for check in checks):
            raise StorageError(KEY_ROTATED)

    def close(self) -> None:
        self.db.dispose()


def open_context(config: Config, clock: Clock | None = None) -> Context:
    database = Database(make_engine(config.database_url))
    try:
        schema.upgrade(database)
        box = _open_box(database, _load_key(database, config, clock or SystemClock()))
    except SQLAlchemyError as error:  # e.g. the server is down: one sentence, not a traceback
        database.dispose()
        raise database_error(error) from error
    except BaseException:
        database.dispose()
        raise
    return Context(db=database, box=box, clock=clock or SystemClock())


def key_matches(checks: list[KeyCheck], key: bytes) -> bool:
    return any(
        check.key_id == key_id_of(key)
        and hmac.compare_digest(check.check_value, key_check_value(key))
        for check in checks
    )


def _open_box(database: Database, key: bytes) -> SecretBox:
    with database.read() as session:
        root = session.get(ServerSetting, DERIVATION_ROOT_SETTING)
    if root is None:
        return SecretBox(key)
    envelope = base64.b64decode(root.value.removeprefix(SEALED_PREFIX))
    return SecretBox(
        key,
        derivation_root=SecretBox(key).decrypt(
            envelope, table=SETTINGS_TABLE, row_id=DERIVATION_ROOT_SETTING, field="value"
        ),
    )


def _load_key(database: Database, config: Config, clock: Clock) -> bytes:
    with database.read() as session:
        checks = list(session.exec(select(KeyCheck)).all())
    if not config.secret_key_text and checks and side_key_file(config.key_file).exists():
        from mfa_tui.core.key_rotation import finish_interrupted_rotation

        finish_interrupted_rotation(config.key_file, checks)
    if config.secret_key_text:
        key = decode_key(config.secret_key_text, SECRET_KEY_ENV_VAR)
        source = SECRET_KEY_ENV_VAR
    elif config.key_file.exists():
        key = read_key_file(config.key_file)
        source = str(config.key_file)
    elif not checks:
        key = create_key_file(config.key_file)
        source = str(config.key_file)
    else:
        raise StorageError(
            f"No secret key at {config.key_file}, and this database was set up with key "
            f"{checks[0].key_id}; restore that key file, or point --key-file or "
            f"{SECRET_KEY_ENV_VAR} at it."
        )
    if not checks:
        with database.write() as session:
            session.add(
                KeyCheck(
                    key_id=key_id_of(key), check_value=key_check_value(key), created_at=clock.now()
                )
            )
        return key
    if key_matches(checks, key):
        return key
    raise StorageError(
        f"The secret key from {source} (id {key_id_of(key)}) does not match this database "
        f"(it expects key {checks[0].key_id}); use the key the database was created with."
    )
