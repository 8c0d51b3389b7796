"""``mfa-tui login``: a person whom SSH (or the terminal) has already authenticated as an OS account.

The OS account maps to the mfa-tui user of the same name. There is no password step: what the
user may do next is decided exactly as after a password at the console (``AuthService.next_step``),
and the screens decide how much of the console it opens (see ``mfa_tui/ui/login_session.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from mfa_tui.core.audit import AuditEntry
from mfa_tui.core.context import Context
from mfa_tui.core.errors import NotFound, Refused
from mfa_tui.core.services.auth import AuthService, NextStep
from mfa_tui.core.services.users import UserService, UserView

ACTOR_PREFIX = "os:"


@dataclass(frozen=True)
class TerminalLogin:
    os_user: str
    user: UserView
    step: NextStep


class TerminalLoginService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def start(self, os_user: str, via: str) -> TerminalLogin:
        """The user for ``os_user`` and their next step; refused (and audited) when there is none.

        ``via`` says how the account was established (``sudo`` or ``uid``), for the audit log."""
        try:
            user = UserService(self.ctx).get(os_user)
            if user.username != os_user:
                # Usernames here ignore case; OS accounts do not: 'Alice' is not 'alice'.
                raise NotFound(os_user)
        except NotFound:
            self._record(os_user, "login.terminal_refused", {"reason": "unknown_user", "via": via})
            raise Refused(
                f"There is no mfa-tui user for the OS account '{os_user}'; "
                "ask an administrator to add one."
            ) from None
        if not user.enabled:
            self._record(os_user, "login.terminal_refused", {"reason": "disabled", "via": via})
            raise Refused("This account is disabled; ask an administrator.")
        step = AuthService(self.ctx).next_step(user.id)
        if step.kind == "expired":
            self._record(os_user, "login.terminal_refused", {"reason": "expired", "via": via})
            raise Refused(
                "Your second-factor setup expired before it was finished; "
                "ask the helpdesk to renew it."
            )
        self._record(os_user, "login.terminal", {"next": step.kind, "via": via}, user.username)
        return TerminalLogin(os_user, user, step)

    def _record(
        self, os_user: str, action: str, details: dict[str, object], target: str | None = None
    ) -> None:
        with self.ctx.db.write() as session:
            self.ctx.audit.append(
                session,
                AuditEntry(f"{ACTOR_PREFIX}{os_user}", action, target or os_user, details),
                self.ctx.clock.now(),
            )
