"""``mfa-tui keys rotate``: a new secret key for every sealed secret, crash-safe at every step.

What the key protects, and what a rotation does with it:

- **Sealed secrets** (AES-GCM envelopes: OTP and Yubikey secrets and a pending RADIUS challenge in
  ``mfa_credentials.secret``, secret settings such as ``smtp.password`` in ``server_settings``)
  are all decrypted with the old key and sealed again with the new one. Afterwards the old key
  opens nothing in the database and is refused at start.
- **Subkeys** (the keyed hashes of backup codes, emailed codes, passes and invitations, and the
  audit chain's HMAC key) are derived from the *derivation root*. Hashes of codes nobody knows
  cannot be recomputed, and the audit chain must keep verifying its old rows, so the root stays
  what it was: the database's first key. The first rotation stores that root in the database,
  sealed under the new key like any other secret (the ``server_settings`` row
  ``DERIVATION_ROOT_SETTING``, invisible to the settings), and later rotations re-seal it with the
  rest. The root is never usable without the current key.

The steps, each one safe to be killed after:

1. the new key is written to a side file next to the key file (``secret.key.new``, mode 0600,
   synced to disk) and an exclusive lock is held on it until the end. The file is written under a
   private name and locked *before* it is linked in as ``secret.key.new``: an open that found it
   unlocked would see a database still on the old key and delete it (see below);
2. one database transaction re-seals every secret, replaces the key check value and appends the
   ``keys.rotate`` audit event, so the database matches exactly one of the two keys;
3. the side file is renamed over the key file (atomic) and the folder synced.

Opening a database with a side file present finishes a rotation that was interrupted:
:func:`finish_interrupted_rotation` renames the side file into place if the database already
matches it (step 2 committed) and deletes it if the database still matches the key file (it did
not). While a rotation holds its lock, an open waits for it. When the transaction raises, the
rotation applies the same rule itself (a lost acknowledgement of a commit that happened completes
it) and keeps the side file for the next open if it cannot tell.

An mfa-tui process started before the rotation still holds the old key: every write transaction
that seals a secret calls :meth:`Context.require_current_key`, which refuses once
the database has moved on, so nothing is ever sealed with a key that no longer exists.
"""

from __future__ import annotations

import base64
import fcntl
import os
import secrets
import signal
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlmodel import Session, col, delete, select

from mfa_tui.core.audit import AuditEntry
from mfa_tui.core.config import SECRET_KEY_ENV_VAR, Config
from mfa_tui.core.context import (
    DERIVATION_ROOT_SETTING,
    SEALED_PREFIX,
    SETTINGS_TABLE,
    key_matches,
)
from mfa_tui.core.crypto import (
    SecretBox,
    decode_key,
    key_check_value,
    new_key,
    side_key_file,
    sync_directory,
    write_key_file,
)
from mfa_tui.core.errors import InputError, StorageError
from mfa_tui.core.factors import radius, totp
from mfa_tui.core.kinds import MfaType
from mfa_tui.core.models import KeyCheck, MfaCredential, ServerSetting

if TYPE_CHECKING:
    from mfa_tui.core.access import Actor
    from mfa_tui.core.context import Context

# Tests set it to a step name to SIGKILL the rotating process right after that step.
CRASH_ENV_VAR = "MFA_TUI_TEST_CRASH_AT"
STEPS = ("side-file-written", "secrets-resealed", "database-committed", "key-file-replaced")


@dataclass(frozen=True)
class RotationResult:
    old_key_id: str
    new_key_id: str
    resealed: int


def rotate(ctx: Context, config: Config, actor: Actor) -> RotationResult:
    """Re-seal every secret under a new key and replace the key file; see the module docstring."""
    if config.secret_key_text:
        raise InputError(
            f"The key comes from {SECRET_KEY_ENV_VAR}, which mfa-tui cannot replace: copy it into "
            f"a file (chmod 600), unset {SECRET_KEY_ENV_VAR}, run 'mfa-tui --key-file FILE keys "
            f"rotate', then set {SECRET_KEY_ENV_VAR} to the file's new content."
        )
    old_box = ctx.box
    new_box = SecretBox(
        new_key(),
        derivation_root=old_box.key if old_box.derivation_root is None else old_box.derivation_root,
    )
    pending = side_key_file(config.key_file)
    lock = _write_locked_side_file(pending, new_box.key)
    try:
        _checkpoint("side-file-written")
        try:
            with ctx.db.write() as session:
                # First, before any row: a process sealing a secret now is waited for or refused.
                ctx.require_current_key(session, exclusive=True)
                now = ctx.clock.now()
                resealed = _reseal_all(session, old_box, new_box, now)
                session.exec(delete(KeyCheck))  # type: ignore[call-overload]
                session.add(
                    KeyCheck(
                        key_id=new_box.key_id,
                        check_value=key_check_value(new_box.key),
                        created_at=now,
                    )
                )
                # The chain key comes from the derivation root, the same before and after.
                ctx.audit.append(
                    session,
                    AuditEntry(
                        actor.name,
                        "keys.rotate",
                        None,
                        {
                            "old_key_id": old_box.key_id,
                            "new_key_id": new_box.key_id,
                            "resealed": resealed,
                        },
                    ),
                    now,
                )
                session.flush()
                _require_side_file(pending, lock)
                _checkpoint("secrets-resealed")
        except BaseException:
            # Not a blind delete: the error may be a lost acknowledgement of a commit that
            # happened (a connection dropped at COMMIT), and then the side file is the only copy
            # of the key the database now needs. Nobody else can have used the new key, so a
            # database not on it did not commit; one that cannot be read is left to the next open.
            committed = _database_matches(ctx, new_box.key)
            if committed is False:
                _remove_side_file(pending, lock)
            if not committed:
                raise
        _checkpoint("database-committed")
        os.replace(pending, config.key_file)
        sync_directory(config.key_file.parent)
        _checkpoint("key-file-replaced")
    finally:
        os.close(lock)
    ctx.box = new_box
    return RotationResult(old_box.key_id, new_box.key_id, resealed)


def finish_interrupted_rotation(key_file: Path, checks: list[KeyCheck]) -> None:
    """Complete or roll back a rotation that was killed, by which key the database matches."""
    pending = side_key_file(key_file)
    try:
        descriptor = os.open(pending, os.O_RDONLY)
    except FileNotFoundError:
        return
    except OSError as error:
        raise StorageError(f"Cannot read the key file {pending}: {error.strerror}.") from error
    try:
        # A running rotation holds this lock until it has renamed the file: wait for it.
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            if os.stat(pending).st_ino != os.fstat(descriptor).st_ino:
                return  # the rotation finished (renamed it) while we waited
        except FileNotFoundError:
            return
        text = os.read(descriptor, 4096).decode("ascii", errors="replace")
        try:
            new = decode_key(text, str(pending))
        except StorageError:
            new = None  # cut short while being written: the database cannot have used it yet
        # Still holding the lock, and the path still names the file read: a new rotation cannot
        # link its own side file here meanwhile (a link never replaces an existing name), so what
        # is renamed or removed below is the file that was judged, never a newer one.
        if new is not None and key_matches(checks, new):
            os.replace(pending, key_file)
        elif new is None or _file_matches(key_file, checks):
            pending.unlink(missing_ok=True)
        else:
            return  # neither key fits: keep both files; the usual error names the expected key
    finally:
        os.close(descriptor)
    sync_directory(key_file.parent)


def _write_locked_side_file(pending: Path, key: bytes) -> int:
    """Create ``pending`` holding ``key``, already locked; the locked descriptor is returned."""
    draft = pending.with_name(f".{pending.name}.{secrets.token_hex(8)}")
    write_key_file(draft, key)
    try:
        descriptor = os.open(draft, os.O_RDONLY)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            os.link(draft, pending)  # unlike a rename, never replaces another rotation's file
        except BaseException:
            os.close(descriptor)
            raise
    except FileExistsError as error:
        raise StorageError(
            f"Another key rotation is running ({pending} exists); wait for it to end."
        ) from error
    except OSError as error:
        raise StorageError(f"Cannot create the key file {pending}: {error.strerror}.") from error
    finally:
        draft.unlink(missing_ok=True)
    sync_directory(pending.parent)
    return descriptor


def _is_locked_file(pending: Path, descriptor: int) -> bool:
    try:
        return os.stat(pending).st_ino == os.fstat(descriptor).st_ino
    except FileNotFoundError:
        return False


def _require_side_file(pending: Path, descriptor: int) -> None:
    """Commit only while the key the database is about to need is the file at ``pending``."""
    if not _is_locked_file(pending, descriptor):
        raise StorageError(
            f"The new key file {pending} was removed or replaced during the rotation; nothing "
            "was changed, run 'mfa-tui keys rotate' again."
        )


def _remove_side_file(pending: Path, descriptor: int) -> None:
    if _is_locked_file(pending, descriptor):
        pending.unlink()
        sync_directory(pending.parent)


def _database_matches(ctx: Context, key: bytes) -> bool | None:
    """Whether the database's key check is ``key``'s; ``None`` when it cannot be read."""
    try:
        with ctx.db.read() as session:
            return key_matches(list(session.exec(select(KeyCheck)).all()), key)
    except Exception:
        return None


def _file_matches(key_file: Path, checks: list[KeyCheck]) -> bool:
    try:
        return key_matches(checks, decode_key(key_file.read_text(encoding="ascii"), str(key_file)))
    except (OSError, UnicodeDecodeError, StorageError):
        return False


def _reseal_all(session: Session, old: SecretBox, new: SecretBox, now: datetime) -> int:
    resealed = 0
    credentials = session.exec(
        select(MfaCredential).where(col(MfaCredential.secret).is_not(None))
    ).all()
    for credential in credentials:
        assert credential.secret is not None
        table, field = _credential_binding(credential)
        plain = old.decrypt(credential.secret, table=table, row_id=credential.id, field=field)
        credential.secret = new.encrypt(plain, table=table, row_id=credential.id, field=field)
        session.add(credential)
        resealed += 1
    settings = session.exec(
        select(ServerSetting).where(col(ServerSetting.value).startswith(SEALED_PREFIX))
    ).all()
    for setting in settings:
        plain = old.decrypt(
            base64.b64decode(setting.value.removeprefix(SEALED_PREFIX)),
            table=SETTINGS_TABLE,
            row_id=setting.key,
            field="value",
        )
        setting.value = _sealed_setting(new, setting.key, plain)
        session.add(setting)
        resealed += 1
    if old.derivation_root is None:
        # The first rotation: keep the old key as the root of the subkeys, sealed under the new.
        session.add(
            ServerSetting(
                key=DERIVATION_ROOT_SETTING,
                value=_sealed_setting(new, DERIVATION_ROOT_SETTING, old.key),
                updated_at=now,
            )
        )
    return resealed


def _sealed_setting(box: SecretBox, key: str, plain: bytes) -> str:
    envelope = box.encrypt(plain, table=SETTINGS_TABLE, row_id=key, field="value")
    return SEALED_PREFIX + base64.b64encode(envelope).decode("ascii")


def _credential_binding(credential: MfaCredential) -> tuple[str, str]:
    """The associated data a credential's secret was sealed with (see the factor modules)."""
    if credential.type == MfaType.RADIUS:
        return radius.STATE_TABLE, "state"
    return totp.TABLE, "secret"


def _checkpoint(step: str) -> None:
    if os.environ.get(CRASH_ENV_VAR) == step:
        os.kill(os.getpid(), signal.SIGKILL)
