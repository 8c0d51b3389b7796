"""Preferences – Multi-factor: the signed-in user's own factor, changed without an administrator.

Every change needs step-up (the current factor proven within five minutes) and is audited.
"""

from __future__ import annotations

from collections.abc import Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Label, Select, Static
from textual.worker import get_current_worker

from mfa_tui.core.access import Actor
from mfa_tui.core.errors import MfaTuiError
from mfa_tui.core.models import MFA_STATUS_LABELS, MFA_TYPE_LABELS, MfaStatus, MfaType
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import UserService, UserView
from mfa_tui.ui.display import plain

FEW_BACKUP_CODES = 3


class PreferencesScreen(Screen[None]):
    DEFAULT_CSS = """
    PreferencesScreen #preferences { padding: 0 1; }
    PreferencesScreen .actions { height: auto; margin-top: 1; }
    PreferencesScreen .actions Button { margin-right: 2; }
    PreferencesScreen #new-type { width: 32; }
    PreferencesScreen #backup-warning { color: $warning; height: auto; }
    """
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("x", "app.log_out", "Log out"),
        Binding("r", "reload", "Reload", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.user: UserView | None = None
        self._supported_types: tuple[str, ...] | None = None

    def compose(self) -> ComposeResult:
        # Empty and disabled until the worker has read the user and the settings (on_mount).
        yield Header()
        with VerticalScroll(id="preferences"):
            yield Static("Preferences – Multi-factor", classes="section-title")
            yield Static("", id="own-mfa")
            yield Static("", id="backup-warning")
            with Horizontal(classes="actions"):
                yield Button("Reconfigure", id="reconfigure", variant="primary", disabled=True)
                yield Button("Generate new backup codes", id="generate-backup-codes", disabled=True)
            yield Label("Change type")
            with Horizontal(classes="actions"):
                yield Select([], prompt="Choose a type", id="new-type")
                yield Button("Change type", id="change-type", disabled=True)
            yield Static("", id="preferences-message", classes="form-error")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Preferences – Multi-factor"
        self.refresh_user()

    def refresh_user(self) -> None:
        """Read the signed-in user's factor and the supported types again, in a worker."""
        self._load(self.app.signed_in.actor)  # type: ignore[attr-defined]

    def action_reload(self) -> None:
        self._say("")
        self.refresh_user()

    @work(thread=True, exclusive=True, group="load-preferences")
    def _load(self, actor: Actor) -> None:
        ctx = self.app.ctx  # type: ignore[attr-defined]
        try:
            supported = SettingsStore(ctx).load().supported_types
            user = UserService(ctx).own_record(actor)
            left = MfaService(ctx).backup_codes_left(user.username)
        except MfaTuiError as error:
            self.app.call_from_thread(self._say, f"{error} Press r to read it again.")
            return
        if not get_current_worker().is_cancelled:  # a newer read replaced this one
            self.app.call_from_thread(self._show, user, left, tuple(supported))

    def _show(self, user: UserView, left: int, supported_types: tuple[str, ...]) -> None:
        self.user = user
        if supported_types != self._supported_types:
            self._supported_types = supported_types
            self.query_one("#new-type", Select).set_options(
                [(MFA_TYPE_LABELS[MfaType(name)], name) for name in supported_types]
            )
        self.query_one("#change-type", Button).disabled = False
        configured = user.mfa_status == MfaStatus.CONFIGURED
        lines = [
            f"Signed in as {user.username}.",
            f"Type: {MFA_TYPE_LABELS[MfaType(user.mfa_type)]}",
            f"Status: {MFA_STATUS_LABELS[MfaStatus(user.mfa_status)]}",
        ]
        if configured:
            lines.append(f"Backup codes left: {left}")
        self.query_one("#own-mfa", Static).update(plain("\n".join(lines)))
        warning = ""
        if configured and left <= FEW_BACKUP_CODES:
            warning = f"Only {left} backup codes left: generate new ones."
        self.query_one("#backup-warning", Static).update(plain(warning))
        self.query_one("#reconfigure", Button).disabled = user.mfa_type == MfaType.NONE
        self.query_one("#generate-backup-codes", Button).disabled = not configured

    # Step-up ---------------------------------------------------------------------------------------

    def _with_step_up(self, then: Callable[[], None]) -> None:
        """Run ``then`` now if the factor was proven in the last five minutes, else ask for it first."""
        app = self.app
        now = app.ctx.clock.now()  # type: ignore[attr-defined]
        if app.signed_in.actor.has_recent_proof(now):  # type: ignore[attr-defined]
            then()
            return
        assert self.user is not None
        if self.user.mfa_status != MfaStatus.CONFIGURED:
            then()  # nothing to prove yet: the service decides whether enrolling is allowed
            return
        from mfa_tui.ui.screens.step_up import StepUpScreen

        def proven(ok: bool | None) -> None:
            if ok:
                then()

        app.push_screen(StepUpScreen(self.user, self.user.mfa_type), proven)

    # Actions ---------------------------------------------------------------------------------------

    @on(Button.Pressed, "#reconfigure")
    def _reconfigure(self) -> None:
        assert self.user is not None
        self._with_step_up(lambda: self._enroll(self.user.mfa_type if self.user else MfaType.TOTP))

    @on(Button.Pressed, "#change-type")
    def _change_type(self) -> None:
        value = self.query_one("#new-type", Select).value
        if value == Select.BLANK:
            self._say("Choose the type to change to.")
            return
        self._with_step_up(lambda: self._enroll(str(value)))

    def _enroll(self, mfa_type: str) -> None:
        from mfa_tui.ui.screens.enrollment import EnrollmentScreen

        assert self.user is not None

        def done(changed: bool | None) -> None:
            self.refresh_user()
            if changed:
                self._say("Your second factor is set up.")

        self.app.push_screen(EnrollmentScreen(self.user, mfa_type, signed_in=True), done)

    @on(Button.Pressed, "#generate-backup-codes")
    def _generate(self) -> None:
        self._with_step_up(self._generate_now)

    @work(thread=True, exclusive=True)
    def _generate_now(self) -> None:
        assert self.user is not None
        actor = self.app.signed_in.actor  # type: ignore[attr-defined]
        try:
            codes = MfaService(self.app.ctx).generate_backup_codes(actor, self.user.username)  # type: ignore[attr-defined]
        except MfaTuiError as error:
            self.app.call_from_thread(self._say, str(error))
            return
        self.app.call_from_thread(self._show_codes, codes)

    def _show_codes(self, codes: list[str]) -> None:
        from mfa_tui.ui.screens.backup_codes import BackupCodesScreen

        self.app.push_screen(BackupCodesScreen(codes), lambda _: self.refresh_user())
        self._say("New backup codes generated: the old ones no longer work.")

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()

    def _say(self, message: str) -> None:
        self.query_one("#preferences-message", Static).update(plain(message))
