"""User edit: General and Multifactor, saved together by Update — or not at all.

Multifactor follows Devolutions Server: choose the Type, then either check "Configure later by
user" or configure it now (QR code, secret, a code from the user's app, Validate). Update refuses
a configure-now that was not validated, saying what is missing. Cancel throws away the pending secret.
"""

from __future__ import annotations

from collections.abc import Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Header, Input, Label, Select, Static

from mfa_tui.core import validation
from mfa_tui.core.access import Action, Target, refusal
from mfa_tui.core.errors import ConflictError, MfaTuiError
from mfa_tui.core.factors import EnrollmentStart
from mfa_tui.core.models import MFA_STATUS_LABELS, MFA_TYPE_LABELS, MfaStatus, MfaType, Role
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.user_edit import MfaChoice, save_user_edit
from mfa_tui.core.services.users import GeneralFields, UserService, UserView
from mfa_tui.ui.display import plain
from mfa_tui.ui.widgets.enrollment_panel import EnrollmentPanel
from mfa_tui.ui.widgets.enrollment_progress import EnrollmentProgressLine
from mfa_tui.ui.widgets.text_input import TextInput

FIELD_CHECKS: dict[str, Callable[[str], object]] = {
    "username": validation.username,
    "display-name": validation.display_name,
    "email": validation.email,
    "phone": validation.phone,
}


class UserEditScreen(Screen[bool]):
    DEFAULT_CSS = """
    UserEditScreen #edit-form { padding: 0 1; }
    UserEditScreen .fields { grid-size: 2; grid-columns: 16 1fr; grid-rows: auto; height: auto; grid-gutter: 0 1; }
    UserEditScreen Input { border: none; height: 1; padding: 0 1; background: $boost; }
    UserEditScreen Input:focus { border: none; background: $primary 30%; }
    UserEditScreen SelectCurrent { border: none; height: 1; padding: 0 1; background: $boost; }
    UserEditScreen Select:focus > SelectCurrent { border: none; background: $primary 30%; }
    UserEditScreen Checkbox { border: none; height: 1; padding: 0; background: transparent; }
    UserEditScreen Checkbox:focus { border: none; }
    UserEditScreen .field-error { color: $error; height: auto; column-span: 2; padding-left: 17; display: none; }
    UserEditScreen .field-error.shown { display: block; }
    UserEditScreen #edit-buttons { height: 3; padding: 0 1; }
    UserEditScreen #edit-buttons Button { margin-right: 2; }
    UserEditScreen #edit-message { height: auto; padding: 0 1; }
    UserEditScreen #configure-now { margin-top: 1; }
    UserEditScreen #mfa-hint { color: $text-muted; height: auto; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "update", "Update"),
    ]

    def __init__(self, user: UserView | None, supported_types: tuple[str, ...]) -> None:
        """``supported_types``: the server's, read by the caller off the UI thread."""
        super().__init__()
        self.user = user
        self.supported_types = supported_types
        self.credential_id: str | None = None
        self.validated = False

    @property
    def actor(self):  # type: ignore[no-untyped-def]
        return self.app.signed_in.actor  # type: ignore[attr-defined]

    def _may(self, action: Action) -> bool:
        target = Target(self.user.id, self.user.role) if self.user else None
        return refusal(self.actor, action, target) is None

    def compose(self) -> ComposeResult:
        user = self.user
        types = [MfaType.NONE.value, *self.supported_types]
        current_type = user.stored_mfa_type if user else MfaType.NONE.value
        if current_type not in types:
            types.append(current_type)
        yield Header()
        with VerticalScroll(id="edit-form"):
            yield Static("General", classes="section-title")
            with Grid(classes="fields"):
                yield Label("Username")
                yield TextInput(user.username if user else "", id="username")
                yield Static("", id="username-error", classes="field-error")
                yield Label("Display name")
                yield TextInput((user.display_name or "") if user else "", id="display-name")
                yield Static("", id="display-name-error", classes="field-error")
                yield Label("Email")
                yield TextInput((user.email or "") if user else "", id="email")
                yield Static("", id="email-error", classes="field-error")
                yield Label("Phone")
                yield TextInput(
                    (user.phone or "") if user else "", id="phone", placeholder="+14155550123"
                )
                yield Static("", id="phone-error", classes="field-error")
                yield Label("Role")
                yield Select(
                    [
                        ("User", Role.USER.value),
                        ("Helpdesk", Role.HELPDESK.value),
                        ("Administrator", Role.ADMIN.value),
                    ],
                    value=user.role if user else Role.USER.value,
                    allow_blank=False,
                    id="role",
                )
                yield Label("")
                yield Checkbox("Enabled", user.enabled if user else True, id="enabled")
                yield Label("New password")
                yield TextInput(
                    id="password",
                    password=True,
                    placeholder="leave empty to keep" if user else "optional",
                )
            yield Static("Multifactor", classes="section-title")
            status = (
                MFA_STATUS_LABELS[MfaStatus(user.stored_mfa_status)] if user else "Not configured"
            )
            yield Static(plain(f"Status: {status}"), id="mfa-status")
            if user is not None:
                # Live while the user enrolls on their own screen (polled; see the widget).
                yield EnrollmentProgressLine(user.id, id="enrollment-progress")
                yield Static("", id="tap-status")
            with Grid(classes="fields"):
                yield Label("Type")
                yield Select(
                    [(MFA_TYPE_LABELS[MfaType(name)], name) for name in types],
                    value=current_type,
                    allow_blank=False,
                    id="mfa-type",
                )
            yield Checkbox(
                "Configure later by user",
                bool(user and user.stored_mfa_status == MfaStatus.PENDING),
                id="configure-later",
            )
            yield Static("", id="mfa-hint")
            yield Button("Configure now", id="configure-now")
            yield EnrollmentPanel(id="enrollment")
        yield Static("", id="edit-message", classes="form-error")
        with Horizontal(id="edit-buttons"):
            yield Button("Update", id="update", variant="primary")
            yield Button("Cancel", id="cancel")
            yield Button("Reload", id="reload")
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"User edit – {self.user.username}" if self.user else "New user"
        self.query_one("#enrollment", EnrollmentPanel).display = False
        self.query_one("#reload", Button).display = False
        if self.user is not None:
            self.query_one("#tap-status", Static).display = False
        if not self._may(Action.MANAGE_ACCOUNTS):
            self.query_one("#role", Select).disabled = True
            self.query_one("#enabled", Checkbox).disabled = True
        if self.user is not None and not self._may(Action.MANAGE_MFA):
            for selector in ("#mfa-type", "#configure-later", "#configure-now"):
                self.query_one(selector).disabled = True
            reason = refusal(self.actor, Action.MANAGE_MFA, Target(self.user.id, self.user.role))
            self.query_one("#mfa-hint", Static).update(plain(reason or ""))
        self._refresh_mfa_controls()
        self.query_one("#username", Input).focus()
        if self.user is not None:
            self._load_access_pass(self.user.username)

    @work(thread=True, exclusive=True, group="access-pass")
    def _load_access_pass(self, username: str) -> None:
        from mfa_tui.core.services.access_pass import AccessPasses

        try:
            active = AccessPasses(self.app.ctx).active_tap(username)  # type: ignore[attr-defined]
        except MfaTuiError:
            return
        if active is not None:
            self.app.call_from_thread(self._show_access_pass, active.summary)

    def _show_access_pass(self, summary: str) -> None:
        line = self.query_one("#tap-status", Static)
        line.update(plain(summary))
        line.display = True

    # Inline validation -----------------------------------------------------------------------------

    @on(Input.Changed)
    def _check_field(self, event: Input.Changed) -> None:
        field = event.input.id or ""
        check = FIELD_CHECKS.get(field)
        if check is None:
            return
        try:
            check(event.value)
            message = ""
        except MfaTuiError as error:
            message = str(error)
        error_line = self.query_one(f"#{field}-error", Static)
        error_line.update(plain(message))
        error_line.set_class(bool(message), "shown")

    # Multifactor -----------------------------------------------------------------------------------

    @property
    def chosen_type(self) -> str:
        value = self.query_one("#mfa-type", Select).value
        return str(value) if value != Select.BLANK else MfaType.NONE.value

    @property
    def configure_later(self) -> bool:
        return self.query_one("#configure-later", Checkbox).value

    @on(Select.Changed, "#mfa-type")
    @on(Checkbox.Changed, "#configure-later")
    def _mfa_changed(self) -> None:
        if self.credential_id is not None:
            self._discard_enrollment()
        self._refresh_mfa_controls()

    def _refresh_mfa_controls(self) -> None:
        chosen = self.chosen_type
        later = self.query_one("#configure-later", Checkbox)
        later.display = chosen != MfaType.NONE
        now_button = self.query_one("#configure-now", Button)
        now_button.display = (
            chosen != MfaType.NONE
            and not self.configure_later
            and self.credential_id is None
            and self.user is not None
        )
        hint = self.query_one("#mfa-hint", Static)
        if self.user is None and chosen != MfaType.NONE and not self.configure_later:
            hint.update("A new user configures MFA at first login: check Configure later by user.")
        elif not hint.disabled and self._may_manage_mfa():
            hint.update("")

    def _may_manage_mfa(self) -> bool:
        return self.user is None or self._may(Action.MANAGE_MFA)

    @on(Button.Pressed, "#configure-now")
    def _configure_now(self) -> None:
        assert self.user is not None
        self.query_one("#configure-now", Button).disabled = True
        self._begin(self.user.username, self.chosen_type)

    @work(thread=True, exclusive=True, group="enrollment")
    def _begin(self, username: str, mfa_type: str) -> None:
        try:
            start = MfaService(self.app.ctx).begin_enrollment(self.actor, username, mfa_type)  # type: ignore[attr-defined]
        except MfaTuiError as error:
            self.app.call_from_thread(self._begin_failed, str(error))
            return
        self.app.call_from_thread(self._begun, start)

    def _begin_failed(self, message: str) -> None:
        # A provider that is down now (Duo, SMTP) may be back in a moment: Configure now again.
        self._say(message)
        self.query_one("#configure-now", Button).disabled = False

    def _begun(self, start: EnrollmentStart) -> None:
        # This agent is the one enrolling now: following the progress live would only repeat it.
        self.query_one("#enrollment-progress", EnrollmentProgressLine).stop()
        self.credential_id = start.credential_id
        self.validated = False
        panel = self.query_one("#enrollment", EnrollmentPanel)
        panel.display = True
        panel.show(start)
        self.query_one("#configure-now", Button).disabled = False
        self._refresh_mfa_controls()
        self.call_after_refresh(self._focus_code)

    def _focus_code(self) -> None:
        # Once the panel is laid out: before that the field has no region to scroll to, and
        # stays below the fold. The whole row is brought into view, Validate too.
        panel = self.query_one("#enrollment", EnrollmentPanel)
        panel.first_input().focus(scroll_visible=False)
        panel.query_one("#enrollment-code-row").scroll_visible(animate=False)

    @on(EnrollmentPanel.CodeEntered)
    def _validate(self, event: EnrollmentPanel.CodeEntered) -> None:
        if self.credential_id is not None:
            self._confirm(self.credential_id, event.code)

    @work(thread=True, exclusive=True, group="enrollment")
    def _confirm(self, credential_id: str, code: str) -> None:
        try:
            ok = MfaService(self.app.ctx).confirm_code(self.actor, credential_id, code)  # type: ignore[attr-defined]
        except MfaTuiError as error:
            self.app.call_from_thread(self._code_refused, str(error))
            return
        self.app.call_from_thread(self._confirmed, ok)

    def _code_refused(self, message: str) -> None:
        self.query_one("#enrollment", EnrollmentPanel).clear_status()
        self._say(message)

    def _confirmed(self, ok: bool) -> None:
        panel = self.query_one("#enrollment", EnrollmentPanel)
        if ok:
            self.validated = True
            panel.set_status("Code verified. Press Update to save.", verified=True)
            self.query_one("#update", Button).focus()
        else:
            panel.set_status("That code is not right: check it and enter the current one.")

    def _discard_enrollment(self) -> None:
        credential_id, self.credential_id = self.credential_id, None
        self.validated = False
        self.query_one("#enrollment", EnrollmentPanel).display = False
        if credential_id is not None:
            self.app.cancel_enrollment(self.actor, credential_id)  # type: ignore[attr-defined]

    # Update and Cancel -----------------------------------------------------------------------------

    def _general(self) -> GeneralFields:
        values = {
            name: self.query_one(f"#{name}", Input).value
            for name in ("username", "display-name", "email", "phone")
        }
        cleared = frozenset(
            key
            for key, name in (
                ("display_name", "display-name"),
                ("email", "email"),
                ("phone", "phone"),
            )
            if not values[name].strip()
        )
        return GeneralFields(
            username=values["username"],
            display_name=values["display-name"] or None,
            email=values["email"] or None,
            phone=values["phone"] or None,
            role=str(self.query_one("#role", Select).value),
            enabled=self.query_one("#enabled", Checkbox).value,
            clear=cleared,
        )

    def _mfa_choice(self) -> MfaChoice | None:
        if self.user is not None and not self._may(Action.MANAGE_MFA):
            return None
        chosen, later = self.chosen_type, self.configure_later
        if self.user is not None and self.credential_id is None:
            unchanged_type = chosen == self.user.stored_mfa_type
            unchanged_state = later == (self.user.stored_mfa_status == MfaStatus.PENDING)
            if unchanged_type and (
                chosen == MfaType.NONE
                or unchanged_state
                or (not later and self.user.stored_mfa_status == MfaStatus.CONFIGURED)
            ):
                return None
        return MfaChoice(chosen, later, self.credential_id if self.validated else None)

    @on(Button.Pressed, "#update")
    def action_update(self) -> None:
        self._say("Saving…")
        self.query_one("#update", Button).disabled = True
        self._save(
            self._general(), self._mfa_choice(), self.query_one("#password", Input).value or None
        )

    @work(thread=True, exclusive=True, group="save")
    def _save(self, general: GeneralFields, mfa: MfaChoice | None, password: str | None) -> None:
        ctx = self.app.ctx  # type: ignore[attr-defined]
        try:
            if self.user is None:
                UserService(ctx).create(
                    self.actor,
                    general.username or "",
                    display_name=general.display_name,
                    email=general.email,
                    phone=general.phone,
                    role=general.role or Role.USER,
                    password=password,
                    mfa_type=mfa.mfa_type if mfa and mfa.configure_later else MfaType.NONE,
                )
            else:
                save_user_edit(
                    ctx, self.actor, self.user.id, self.user.version, general, mfa, password
                )
        except ConflictError as error:
            self.app.call_from_thread(self._conflict, str(error))
            return
        except MfaTuiError as error:
            self.app.call_from_thread(self._failed, str(error))
            return
        self.app.call_from_thread(self._saved, general.username or "")

    def _saved(self, username: str) -> None:
        self.credential_id = None  # now the user's factor: Cancel must not delete it
        self.app.notify(f"{username} saved.")
        self.dismiss(True)

    def _failed(self, message: str) -> None:
        self.query_one("#update", Button).disabled = False
        self._say(message)

    def _conflict(self, message: str) -> None:
        self._failed(message)
        if self.user is not None:  # a new user has no stored record to reload
            self.query_one("#reload", Button).display = True

    @on(Button.Pressed, "#reload")
    def _reload(self) -> None:
        assert self.user is not None
        self._discard_enrollment()
        self._load_again(self.user.id)

    @work(thread=True, exclusive=True, group="reload")
    def _load_again(self, user_id: int) -> None:
        ctx = self.app.ctx  # type: ignore[attr-defined]
        try:
            fresh = UserService(ctx).open_for_edit(self.actor, user_id)
            supported = SettingsStore(ctx).load().supported_types
        except MfaTuiError as error:
            self.app.call_from_thread(self._say, str(error))
            return
        self.app.call_from_thread(self._show_again, fresh, supported)

    def _show_again(self, fresh: UserView, supported_types: tuple[str, ...]) -> None:
        if self.is_current:  # not if Cancel was pressed meanwhile
            self.app.switch_screen(UserEditScreen(fresh, supported_types))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self._discard_enrollment()
        self.dismiss(False)

    def _say(self, message: str) -> None:
        self.query_one("#edit-message", Static).update(plain(message))
