"""Who may do what (SPEC §1), decided in one place for screens, the browser view and the CLI."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from mfa_tui.core.kinds import Role

STEP_UP_WINDOW = timedelta(minutes=5)


class Action(StrEnum):
    VIEW_USERS = "view users"
    EDIT_GENERAL = "edit a user's general fields"
    MANAGE_ACCOUNTS = "create, delete, disable users or change roles"
    MANAGE_MFA = "change a user's MFA, reset it or unlock the user"
    SERVER_SETTINGS = "change server settings"
    READ_LOGS = "read the audit log"


@dataclass(frozen=True)
class Actor:
    """Who is acting: a signed-in user, or the CLI (trusted like root, audited as ``cli:<os-user>``)."""

    name: str
    role: str
    user_id: int | None = None
    # When this person last proved their second factor in this session (step-up), if ever.
    proved_at: datetime | None = None

    @classmethod
    def cli(cls) -> Actor:
        try:
            os_user = getpass.getuser()
        except (KeyError, OSError):
            os_user = "unknown"
        return cls(name=f"cli:{os_user}", role="cli")

    @property
    def is_cli(self) -> bool:
        return self.role == "cli"

    def acts_on_self(self, user_id: int | None) -> bool:
        return not self.is_cli and self.user_id is not None and self.user_id == user_id

    def has_recent_proof(self, now: datetime) -> bool:
        """Step-up: the active factor (or a backup code) proven within the last five minutes."""
        return self.proved_at is not None and now - self.proved_at <= STEP_UP_WINDOW


@dataclass(frozen=True)
class Target:
    user_id: int
    role: str


def refusal(actor: Actor, action: Action, target: Target | None = None) -> str | None:
    """None when allowed, else the sentence telling the person why not."""
    if actor.is_cli or actor.role == Role.ADMIN:
        return _self_refusal(actor, action, target)
    if actor.role == Role.HELPDESK:
        if action in (Action.VIEW_USERS, Action.READ_LOGS):
            return None
        if action in (Action.EDIT_GENERAL, Action.MANAGE_MFA):
            if target is not None and target.role != Role.USER:
                return "Helpdesk staff can only act on users with the role user."
            return _self_refusal(actor, action, target)
        return "Only administrators can do that."
    return "Only staff can use Administration."


def _self_refusal(actor: Actor, action: Action, target: Target | None) -> str | None:
    if actor.is_cli or target is None or target.user_id != actor.user_id:
        return None
    if action is Action.MANAGE_MFA:
        return "Change your own MFA in Preferences – Multi-factor, not here."
    if action is Action.MANAGE_ACCOUNTS:
        return "You cannot change your own role, lock or account here."
    return None
