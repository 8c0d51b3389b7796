"""Reading and changing server settings (secret values encrypted, every change audited)."""

from __future__ import annotations

import base64
import json
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from mfa_tui.core.access import Action, Actor
from mfa_tui.core.audit import AuditEntry
from mfa_tui.core.context import Context
from mfa_tui.core.models import MfaType, ServerSetting, User
from mfa_tui.core.services.guard import authorize, refusals_audited
from mfa_tui.core.settings import (
    SETTING_SPECS,
    SPECS_BY_KEY,
    Settings,
    SettingSpec,
    spec_for,
    validate_combination,
)

TABLE = "server_settings"


class SettingsStore:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def load(self, session: Session | None = None) -> Settings:
        if session is None:
            with self.ctx.db.read() as own_session:
                return self.load(own_session)
        rows = session.exec(select(ServerSetting)).all()
        return Settings.from_values(
            {
                row.key: self._decode(spec_for(row.key), row)
                for row in rows
                if row.key in SPECS_BY_KEY
            }
        )

    def show(self) -> list[tuple[SettingSpec, str]]:
        settings = self.load()
        return [(spec, spec.show(settings[spec.key])) for spec in SETTING_SPECS]

    def set_many(self, actor: Actor, raw_values: dict[str, str]) -> Settings:
        """Validate every value and the combination, then save all or nothing."""
        parsed = {key: spec_for(key).parse(raw) for key, raw in raw_values.items()}
        with refusals_audited(self.ctx, actor), self.ctx.db.write() as session:
            self.ctx.require_current_key(session)
            authorize(actor, Action.SERVER_SETTINGS)
            current = self.load(session)
            updated = current
            for key, value in parsed.items():
                updated = updated.with_value(key, value)
            validate_combination(updated)
            changes = {
                key: {
                    "before": spec_for(key).show(current[key]),
                    "after": spec_for(key).show(value),
                }
                for key, value in parsed.items()
                if current[key] != value
            }
            for key in changes:
                self._save(session, spec_for(key), parsed[key])
            if changes:
                self.ctx.audit.append(
                    session,
                    AuditEntry(actor.name, "settings.change", None, changes),
                    self.ctx.clock.now(),
                )
            return updated

    def users_affected(self, new_usage: str) -> int:
        """How many users a change of MFA usage starts or stops asking for a second factor."""
        current = self.load().usage
        if current == new_usage:
            return 0
        has_type = col(User.mfa_type) != MfaType.NONE
        without_type = col(User.mfa_type) == MfaType.NONE
        condition = {
            frozenset({"optional", "required"}): without_type,
            frozenset({"optional", "skipped"}): has_type,
        }.get(frozenset({current, new_usage}))
        query = select(func.count()).select_from(User)
        if condition is not None:
            query = query.where(condition)
        with self.ctx.db.read() as session:
            return session.exec(query).one()

    def _save(self, session: Session, spec: SettingSpec, value: Any) -> None:
        if spec.secret:
            envelope = self.ctx.box.encrypt(
                json.dumps(value).encode(), table=TABLE, row_id=spec.key, field="value"
            )
            stored = "enc:" + base64.b64encode(envelope).decode("ascii")
        else:
            stored = json.dumps(value)
        row = session.get(ServerSetting, spec.key)
        if row is None:
            session.add(ServerSetting(key=spec.key, value=stored, updated_at=self.ctx.clock.now()))
        else:
            row.value = stored
            row.updated_at = self.ctx.clock.now()
            session.add(row)
        session.flush()

    def _decode(self, spec: SettingSpec, row: ServerSetting) -> Any:
        if row.value.startswith("enc:"):
            envelope = base64.b64decode(row.value[4:])
            value = json.loads(
                self.ctx.box.decrypt(envelope, table=TABLE, row_id=spec.key, field="value")
            )
        else:
            value = json.loads(row.value)
        return tuple(value) if spec.kind == "types" else value
