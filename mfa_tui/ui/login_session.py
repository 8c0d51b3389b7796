"""``mfa-tui login``: the console for a person SSH has already authenticated as an OS account.

There is no login screen: the account is known, so a pending user goes straight to enrollment and
anyone else to Preferences – Multi-factor. Administration opens only for a staff account that also
proves its second factor here; SSH proved who holds the key, not the second factor. Leaving (log
out, or Log out during enrollment) ends the process instead of offering a password login, because
under sudo this process runs with the rights of the account that owns the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from textual import events
from textual.app import SystemCommand
from textual.screen import Screen

from mfa_tui.core.kinds import Role
from mfa_tui.ui.app import MfaTuiApp

if TYPE_CHECKING:
    from mfa_tui.core.context import Context
    from mfa_tui.core.services.terminal_login import TerminalLogin
    from mfa_tui.core.services.users import UserView

# Ways a session starts here without a second factor proven on SecondFactorScreen.
WITHOUT_PROOF = ("terminal", "enrollment")


class TerminalLoginApp(MfaTuiApp):
    # SSH took the place of the password: a pass must not stand in for the factor as well.
    ACCESS_PASS_AT_LOGIN = False
    # Nothing is proven by SSH's key: changing one's own factor in Preferences asks for the
    # current one first.
    UNPROVEN_METHODS = ("password", "terminal")

    def __init__(self, context: Context, login: TerminalLogin) -> None:
        super().__init__(context=context)
        self.login = login

    def on_mount(self, event: events.Mount) -> None:
        # Instead of the console's start (a login screen while the database opens), not before it.
        event.prevent_default()
        user, step = self.login.user, self.login.step
        if step.kind == "enroll":
            from mfa_tui.ui.screens.enrollment import EnrollmentScreen

            self.push_screen(EnrollmentScreen(user, step.mfa_type))
        elif step.kind == "second_factor" and user.role != Role.USER:
            from mfa_tui.ui.screens.second_factor import SecondFactorScreen

            self.push_screen(SecondFactorScreen(user, step.mfa_type))
        else:
            # start_session switches away from the screen on top; a blank one stands in.
            self.push_screen(Screen())
            self.start_session(user, "terminal", landing="preferences")

    def start_session(self, user: UserView, method: str, landing: str | None = None) -> None:
        if user.role != Role.USER and method in WITHOUT_PROOF:
            # Signed in as a plain user: no screen, command or service call grants more.
            user = replace(user, role=Role.USER)
            landing = "preferences"
            self.notify(
                "Only your own MFA is open here: administration needs a second factor proven "
                "at this login.",
                timeout=10,
            )
        super().start_session(user, method, landing)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        # A screenshot would be a file of the service account's, written where the person has no
        # business writing and cannot read it.
        return (
            command
            for command in super().get_system_commands(screen)
            if command.title != "Screenshot"
        )

    def show_login(self, notice: str | None = None) -> None:
        self.signed_in = None
        self.exit(message=notice)
