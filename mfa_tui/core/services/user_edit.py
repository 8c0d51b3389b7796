"""User edit's Update: the General section and the Multifactor section saved as one transaction.

Either everything the form shows is saved, or nothing is (and the message says why).
"""

from __future__ import annotations

from dataclasses import dataclass

from mfa_tui.core import passwords, validation
from mfa_tui.core.access import Action, Actor
from mfa_tui.core.context import Context
from mfa_tui.core.errors import InputError
from mfa_tui.core.models import MfaType
from mfa_tui.core.services.guard import authorize, refusals_audited
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import GeneralFields, UserService, UserView, lock_for_edit


@dataclass(frozen=True)
class MfaChoice:
    """The Multifactor section: a type, and either Configure later or a validated enrollment."""

    mfa_type: str
    configure_later: bool
    credential_id: str | None = None  # a configure-now enrollment whose code was validated


def save_user_edit(
    ctx: Context,
    actor: Actor,
    user_id: int,
    expected_version: int,
    general: GeneralFields,
    mfa: MfaChoice | None,
    password: str | None = None,
) -> UserView:
    users = UserService(ctx)
    mfa_service = MfaService(ctx)
    now = ctx.clock.now()
    if mfa is not None:
        settings = SettingsStore(ctx).load()
        validation.supported_mfa_type(mfa.mfa_type, settings.supported_types)
        if mfa.mfa_type != MfaType.NONE and not mfa.configure_later and mfa.credential_id is None:
            raise InputError(
                "Configure now is not finished: validate a code from the user's app, "
                "or check Configure later by user."
            )
    password_hash = None
    if password:
        passwords.check_password_strength(password, general.username or "")
        password_hash = passwords.hash_password(password)  # slow: before the write lock is taken
    with refusals_audited(ctx, actor), ctx.db.write() as session:
        user = lock_for_edit(session, user_id, expected_version)
        authorize(actor, Action.EDIT_GENERAL, user)
        users.apply_general(session, actor, user, general, now)
        if password_hash is not None:
            users.apply_password_hash(session, actor, user, password_hash, now)
        if mfa is not None:
            authorize(actor, Action.MANAGE_MFA, user)
            if mfa.mfa_type == MfaType.NONE or mfa.configure_later:
                mfa_service.apply_type(session, actor, user, mfa.mfa_type, now)
            else:
                assert mfa.credential_id is not None
                mfa_service.apply_activation(session, actor, user, mfa.credential_id, now)
    return users.get_by_id(user_id)
