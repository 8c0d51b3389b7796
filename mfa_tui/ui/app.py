"""The console: opens the database in a worker, then first run or login, then the signed-in screens."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from textual import events, on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import get_current_worker

from mfa_tui.core.access import Actor
from mfa_tui.core.clock import SystemClock
from mfa_tui.core.errors import MfaTuiError
from mfa_tui.core.kinds import Role
from mfa_tui.ui.downloads import DOWNLOAD
from mfa_tui.ui.resources import stylesheet
from mfa_tui.ui.screens.waiting import WaitingScreen

if TYPE_CHECKING:  # the database layer is imported by the worker that opens it, after first paint
    from mfa_tui.core.clock import Clock
    from mfa_tui.core.config import Config
    from mfa_tui.core.context import Context
    from mfa_tui.core.services.users import UserView
    from mfa_tui.core.settings import Settings

# What keeps a session from timing out: a person's keys, clicks, scrolls and pastes.
ACTIVITY = (
    events.Key,
    events.MouseDown,
    events.MouseScrollDown,
    events.MouseScrollUp,
    events.Paste,
)


@dataclass(frozen=True)
class SignedIn:
    user: UserView
    # When the second factor was last proven in this session (step-up lasts five minutes).
    proved_at: datetime | None = None

    @property
    def actor(self) -> Actor:
        return Actor(
            name=self.user.username,
            role=self.user.role,
            user_id=self.user.id,
            proved_at=self.proved_at,
        )

    @property
    def is_staff(self) -> bool:
        return self.user.role in (Role.ADMIN, Role.HELPDESK)


class MfaTuiApp(App[None]):
    TITLE = "mfa-tui"
    CSS_PATH = stylesheet()
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", priority=True)]
    # A temporary access pass may stand in for the second factor after the password (login.py).
    ACCESS_PASS_AT_LOGIN = True
    # Ways a session starts that prove no second factor (step-up then asks for it).
    UNPROVEN_METHODS: tuple[str, ...] = ("password",)
    # How often, in real seconds, the idle timeout is checked against the clock.
    IDLE_CHECK_SECONDS = 5.0

    def __init__(
        self,
        config: Config | None = None,
        *,
        context: Context | None = None,
        clock: Clock | None = None,
        idle_timeout: timedelta | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self._service_context = context
        self._clock = clock
        # A browser tab's session (mfa-tui serve) ends after this long without a key or a click.
        self.idle_timeout = idle_timeout
        self._idle_clock = clock or SystemClock()
        self._last_input = self._idle_clock.now()
        self._database_opened = threading.Event()
        self._database_problem: str | None = None
        self.signed_in: SignedIn | None = None
        self._ending = False  # the idle timeout has ended this process's session

    @property
    def ctx(self) -> Context:
        assert self._service_context is not None, "the database is opened on mount"
        return self._service_context

    def on_mount(self) -> None:
        # The login screen paints first; the database (and the heavy imports it needs) opens
        # meanwhile in a worker, so the user can start typing at once.
        from mfa_tui.ui.screens.login import LoginScreen

        self.push_screen(LoginScreen())
        self._open_database()
        if self.idle_timeout is not None:
            self.set_interval(self.IDLE_CHECK_SECONDS, self.end_idle_session)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, ACTIVITY):
            self._last_input = self._idle_clock.now()
        await super().on_event(event)

    def end_idle_session(self) -> None:
        """End the session, and with it a browser tab's process, once it has been idle too long."""
        if (
            self.idle_timeout is None
            or self._ending
            or self._idle_clock.now() - self._last_input < self.idle_timeout
        ):
            return
        self._ending = True
        minutes = round(self.idle_timeout.total_seconds() / 60)
        ended = (
            f"Session ended after {minutes} minutes without a key press or a click; "
            "log in again to go on."
        )
        self._end_session(
            "idle", lambda problem: self.exit(message=f"{ended} {problem}" if problem else ended)
        )

    def _end_session(self, reason: str, then: Callable[[str | None], object]) -> None:
        """Sign out at once: every screen of the session goes (its workers with it), the logout
        is recorded in a worker, then ``then(problem)`` runs (back to the login screen, or the
        end of the process); ``problem`` says why the logout could not be recorded, if so."""
        signed_in, self.signed_in = self.signed_in, None
        if signed_in is None:
            then(None)
            return
        self._show_only(WaitingScreen("Signing out…"))
        self._record_logout(signed_in.actor, reason, then)

    @work(thread=True, exclusive=True, group="end-session")
    def _record_logout(
        self, actor: Actor, reason: str, then: Callable[[str | None], object]
    ) -> None:
        from mfa_tui.core.services.auth import AuthService

        problem = None
        try:
            AuthService(self.ctx).record_logout(actor, reason)
        except MfaTuiError as error:  # logging out always works; the log says what it could
            problem = f"The logout was not recorded: {error}"
        self.call_from_thread(then, problem)

    def _show_only(self, screen: Screen[None]) -> None:
        """``screen`` in place of every screen above the app's own."""
        while len(self.screen_stack) > 2:
            self.pop_screen()
        self.switch_screen(screen)

    @on(events.DeliveryComplete)
    def _downloaded(self, event: events.DeliveryComplete) -> None:
        if event.name == DOWNLOAD:
            self.notify(f"Saved {event.path}." if event.path else "Download complete.")

    @on(events.DeliveryFailed)
    def _not_downloaded(self, event: events.DeliveryFailed) -> None:
        if event.name == DOWNLOAD:
            self.notify(f"The file was not saved: {event.exception}", severity="error")

    def wait_for_database(self, timeout: float = 60.0) -> Context:
        """From a worker thread: the opened context, or the reason it could not be opened."""
        if not self._database_opened.wait(timeout):
            raise MfaTuiError("The database did not open in time; check that it is reachable.")
        if self._service_context is None:
            raise MfaTuiError(self._database_problem or "The database could not be opened.")
        return self._service_context

    @work(thread=True, exclusive=True, group="open-database")
    def _open_database(self) -> None:
        from mfa_tui.core.context import open_context
        from mfa_tui.core.services.users import UserService

        try:
            if self._service_context is None:
                assert self.config is not None
                self._service_context = open_context(self.config, self._clock)
            has_users = UserService(self._service_context).count() > 0
        except MfaTuiError as error:
            self._service_context = None
            self._database_problem = str(error)
            self._database_opened.set()
            self.call_from_thread(self._cannot_open, str(error))
            return
        self._database_opened.set()
        if not has_users:
            self.call_from_thread(self._first_run)

    def _first_run(self) -> None:
        from mfa_tui.ui.screens.first_run import FirstRunScreen
        from mfa_tui.ui.screens.login import LoginScreen

        if isinstance(self.screen, LoginScreen):
            # Pushed, not switched: replacing a login screen whose Header is still mounting
            # crashes inside Textual. show_login() later unwinds the stack to one screen.
            self.push_screen(FirstRunScreen())

    def _cannot_open(self, message: str) -> None:
        from mfa_tui.ui.screens.login import LoginScreen

        if isinstance(self.screen, LoginScreen):
            self.screen.cannot_open(message)

    # Sessions --------------------------------------------------------------------------------------

    def show_login(self, notice: str | None = None) -> None:
        from mfa_tui.ui.screens.login import LoginScreen

        self.signed_in = None
        self._show_only(LoginScreen(notice))
        self._show_who("")

    def start_session(self, user: UserView, method: str, landing: str | None = None) -> None:
        """The password and any second factor are proven: record the login, then open the home
        screen for this role. The record is written in a worker; if it cannot be written the
        session does not start (a login that leaves no trace is no login)."""
        proved_at = None if method in self.UNPROVEN_METHODS else self.ctx.clock.now()
        # Nothing of the login's screens can be pressed (again, or Back) while it is recorded.
        self._show_only(WaitingScreen("Signing in…"))
        self._record_login(SignedIn(user, proved_at), method, landing)

    @work(thread=True, exclusive=True, group="start-session")
    def _record_login(self, signed_in: SignedIn, method: str, landing: str | None) -> None:
        from mfa_tui.core.services.auth import AuthService

        try:
            AuthService(self.ctx).record_login(signed_in.actor, method)
        except MfaTuiError as error:
            self.call_from_thread(self.show_login, f"Not signed in: {error}")
            return
        if not get_current_worker().is_cancelled:  # not if another login took its place
            self.call_from_thread(self._open_session, signed_in, landing)

    def _open_session(self, signed_in: SignedIn, landing: str | None) -> None:
        self.signed_in = signed_in
        user = signed_in.user
        if landing == "preferences":
            from mfa_tui.ui.screens.preferences import PreferencesScreen

            self._show_only(PreferencesScreen())
        else:
            self._show_only(self.home_screen())
        self._show_who(f"{user.username} ({user.role})")

    @work(thread=True, group="cancel-enrollment")
    def cancel_enrollment(self, actor: Actor, credential_id: str) -> None:
        """Remove a setup that was left unfinished, in an app worker: the screen that started it
        is closing, and would cancel a worker of its own."""
        from mfa_tui.core.services.mfa import MfaService

        try:
            MfaService(self.ctx).cancel_enrollment(actor, credential_id)
        except MfaTuiError as error:
            # What is left is never valid for a login, and the next setup replaces it.
            self.call_from_thread(
                self.notify, f"The unfinished setup stays until the next one: {error}"
            )

    def _show_who(self, text: str) -> None:
        # After the switch: changing the title while the old screen's Header is being removed
        # races inside Textual (NoMatches on HeaderTitle).
        self.call_after_refresh(setattr, self, "sub_title", text)

    def record_proof(self) -> None:
        """Step-up: the signed-in user just proved their second factor again."""
        if self.signed_in is not None:
            self.signed_in = replace(self.signed_in, proved_at=self.ctx.clock.now())

    def home_screen(self) -> Screen[None]:
        assert self.signed_in is not None
        if self.signed_in.is_staff:
            from mfa_tui.ui.screens.users import UsersScreen

            return UsersScreen()
        from mfa_tui.ui.screens.preferences import PreferencesScreen

        return PreferencesScreen()

    def action_log_out(self) -> None:
        self._end_session("logged out", self._logged_out)

    def _logged_out(self, problem: str | None) -> None:
        self.show_login("You have logged out.")
        if problem:
            self.notify(problem, severity="warning", timeout=15)

    async def action_quit(self) -> None:
        """Ctrl+Q: a signed-in session is logged out (and recorded) before the process ends."""
        self._end_session("quit", lambda problem: self.exit(message=problem))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if self.signed_in is None:
            return
        yield SystemCommand(
            "Log out", "End this session and return to the login screen", self.action_log_out
        )
        if self.signed_in.is_staff:
            yield SystemCommand("Administration – Users", "Find and edit users", self._open_users)
            yield SystemCommand("Logs", "Read the audit log", self._open_logs)
        if self.signed_in.user.role == Role.ADMIN:
            yield SystemCommand(
                "Server Settings – Multi-factor",
                "MFA policy, supported types, lockout",
                self.action_open_server_settings,
            )
        yield SystemCommand(
            "Preferences – Multi-factor", "Your own second factor", self._open_preferences
        )

    def _open_users(self) -> None:
        from mfa_tui.ui.screens.users import UsersScreen

        if not isinstance(self.screen, UsersScreen):
            self.switch_screen(UsersScreen())

    def _open_logs(self) -> None:
        from mfa_tui.ui.screens.audit_log import AuditLogScreen

        self.push_screen(AuditLogScreen())

    def action_open_server_settings(self) -> None:
        if self.signed_in is not None and self.signed_in.user.role == Role.ADMIN:
            self._open_server_settings(self.signed_in.actor)
        elif self.signed_in is not None:
            self._refuse_server_settings(self.signed_in.actor)

    @work(thread=True, exclusive=True, group="open-server-settings")
    def _open_server_settings(self, asked_by: Actor) -> None:
        """The settings are read here, so the screen opens filled in (or not at all), and only
        for the administrator who asked (not whoever signed in meanwhile)."""
        from mfa_tui.core.services.settings_store import SettingsStore

        try:
            settings = SettingsStore(self.ctx).load()
        except MfaTuiError as error:
            self.call_from_thread(self.notify, str(error), severity="error")
            return
        self.call_from_thread(self._show_server_settings, settings, asked_by)

    def _show_server_settings(self, settings: Settings, asked_by: Actor) -> None:
        from mfa_tui.ui.screens.server_settings import ServerSettingsScreen

        still_asking = self.signed_in is not None and self.signed_in.actor.name == asked_by.name
        if still_asking and not isinstance(self.screen, ServerSettingsScreen):
            self.push_screen(ServerSettingsScreen(settings))

    @work(thread=True, group="refusal")
    def _refuse_server_settings(self, actor: Actor) -> None:
        """Said and audited like any refusal (the core decides and words it)."""
        from mfa_tui.core.access import Action
        from mfa_tui.core.services.guard import authorize, refusals_audited

        try:
            with refusals_audited(self.ctx, actor):
                authorize(actor, Action.SERVER_SETTINGS)
        except MfaTuiError as refused:
            self.call_from_thread(self.notify, str(refused), severity="error")

    def _open_preferences(self) -> None:
        from mfa_tui.ui.screens.preferences import PreferencesScreen

        self.push_screen(PreferencesScreen())


def run_console(config: Config) -> None:
    MfaTuiApp(config).run()
