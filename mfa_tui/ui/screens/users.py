"""Administration – Users: find a user fast, edit, reset MFA, unlock, delete; and the helpdesk
walkthrough: verify the caller (v), a temporary access pass (t), an enrollment invitation (i)."""

from __future__ import annotations

from collections.abc import Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Header, Input, Static

from mfa_tui.core.access import Action
from mfa_tui.core.errors import MfaTuiError
from mfa_tui.core.services.guard import authorize, refusals_audited
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import SORT_COLUMNS, UserPager, UserQuery, UserService, UserView
from mfa_tui.ui.display import plain
from mfa_tui.ui.widgets.text_input import TextInput
from mfa_tui.ui.widgets.user_table import COLUMNS, UserTable

SEARCH_DEBOUNCE_SECONDS = 0.15
SORT_ORDER = [column.key for column in COLUMNS if column.key in SORT_COLUMNS]


class UsersScreen(Screen[None]):
    DEFAULT_CSS = """
    UsersScreen #search { border: none; height: 1; padding: 0 1; margin-bottom: 1; }
    UsersScreen #users-status { height: 1; color: $text-muted; padding: 0 1; }
    """
    BINDINGS = [
        Binding("slash", "search", "Search"),
        Binding("n", "new_user", "New"),
        Binding("r", "reset_mfa", "Reset MFA"),
        # Off the footer, which is full at 80 columns: the status line names them.
        Binding("v", "verify_caller", "Verify caller", show=False),
        Binding("t", "access_pass", "Access pass", show=False),
        Binding("i", "invite", "Invite", show=False),
        Binding("u", "unlock", "Unlock"),
        Binding("delete", "delete_user", "Delete"),
        Binding("o", "sort", "Sort", show=False),
        Binding("O", "reverse_sort", "Reverse", show=False),
        Binding("q", "toggle_requests", "Reset requests", show=False),
        Binding("a", "approve_request", "Approve reset", show=False),
        Binding("d", "deny_request", "Deny reset", show=False),
        Binding("s", "app.open_server_settings", "Settings", show=False),
        Binding("l", "logs", "Logs"),
        Binding("p", "preferences", "Preferences", show=False),
        Binding("x", "app.log_out", "Log out", show=False),
        Binding("escape", "clear_search", "Clear search", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._debounce: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield TextInput(id="search", placeholder="/ Search username, name or email")
        yield UserTable(UserPager(self.app.ctx, self.actor), id="users")  # type: ignore[attr-defined]
        yield Static("", id="users-status")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Administration – Users"
        self.table.load(UserQuery())
        self.table.focus()

    @property
    def table(self) -> UserTable:
        return self.query_one("#users", UserTable)

    @property
    def actor(self):  # type: ignore[no-untyped-def]
        return self.app.signed_in.actor  # type: ignore[attr-defined]

    # Search and sort -------------------------------------------------------------------------------

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_clear_search(self) -> None:
        search = self.query_one("#search", Input)
        if search.value:
            search.value = ""
        self.table.focus()

    @on(Input.Changed, "#search")
    def _search_changed(self) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(SEARCH_DEBOUNCE_SECONDS, self._apply_search)

    @on(Input.Submitted, "#search")
    def _search_submitted(self) -> None:
        self._apply_search()
        self.table.focus()

    def _apply_search(self) -> None:
        text = self.query_one("#search", Input).value
        if text != self.table.query_spec.search:
            spec = self.table.query_spec
            self.table.load(UserQuery(text, spec.sort, spec.descending))

    def action_sort(self) -> None:
        spec = self.table.query_spec
        following = SORT_ORDER[(SORT_ORDER.index(spec.sort) + 1) % len(SORT_ORDER)]
        self.table.load(UserQuery(spec.search, following, False))

    def action_reverse_sort(self) -> None:
        spec = self.table.query_spec
        self.table.load(UserQuery(spec.search, spec.sort, not spec.descending))

    @on(UserTable.Loaded)
    def _loaded(self, event: UserTable.Loaded) -> None:
        spec = self.table.query_spec
        column = next(c.title for c in COLUMNS if c.key == spec.sort)
        order = "descending" if spec.descending else "ascending"
        found = f"{event.total:,}{'' if event.exact else '+'} user{'s' if event.total != 1 else ''}"
        if event.counting:
            found += " (counting…)"
        matching = f" matching '{spec.search}'" if spec.search else ""
        if spec.reset_requests_only:
            matching += " with a reset request (a: approve, d: deny, q: everyone)"
        self.query_one("#users-status", Static).update(
            plain(
                f"{found}{matching} · by {column}, {order} · v verify caller · t access pass · "
                "i invite · o/O sort · q reset requests · s settings · p preferences · x log out"
            ),
            layout=False,
        )

    @on(UserTable.LoadFailed)
    def _load_failed(self, event: UserTable.LoadFailed) -> None:
        self.query_one("#users-status", Static).update(plain(event.message), layout=False)

    # Actions on the selected user -----------------------------------------------------------------

    @on(UserTable.UserSelected)
    def _edit(self, event: UserTable.UserSelected) -> None:
        self._open_editor(event.user)

    @work(thread=True, exclusive=True, group="open-editor")
    def _open_editor(self, user: UserView | None) -> None:
        """User edit for ``user`` (None: a new user), with what it needs read here, off the UI
        thread: a database that went away is a message, not a crash."""
        ctx = self.app.ctx  # type: ignore[attr-defined]
        try:
            if user is None:  # creating users is the administrators' (said and audited)
                with refusals_audited(ctx, self.actor):
                    authorize(self.actor, Action.MANAGE_ACCOUNTS)
            fresh = UserService(ctx).open_for_edit(self.actor, user.id) if user else None
            supported = SettingsStore(ctx).load().supported_types
        except MfaTuiError as error:
            self.app.call_from_thread(self.app.notify, str(error), severity="error")
            return
        self.app.call_from_thread(self._show_editor, fresh, supported)

    def _show_editor(self, user: UserView | None, supported_types: tuple[str, ...]) -> None:
        from mfa_tui.ui.screens.user_edit import UserEditScreen

        self.app.push_screen(UserEditScreen(user, supported_types), self._after_edit)

    def _after_edit(self, saved: bool | None) -> None:
        if saved:
            self.table.load(keep_cursor=True)

    def action_new_user(self) -> None:
        self._open_editor(None)

    def action_reset_mfa(self) -> None:
        def reset(user: UserView, reason: str | None) -> None:
            self._confirm_then(
                "Reset MFA for {name}? Their factor and backup codes are removed and they must enroll again.",
                "Reset MFA",
                lambda u: MfaService(self.app.ctx).reset(  # type: ignore[attr-defined]
                    self.actor, u.username, override_reason=reason
                ),
                "MFA reset for {name}: pending user configuration.",
            )

        self._with_verified_caller("Reset MFA", reset)

    # Helpdesk walkthrough -------------------------------------------------------------------------

    def action_verify_caller(self) -> None:
        from mfa_tui.ui.screens.verify_caller import VerifyCallerScreen

        user = self.table.selected_user
        if user is not None:
            self.app.push_screen(VerifyCallerScreen(user))

    def action_access_pass(self) -> None:
        self._with_verified_caller("Create a temporary access pass", self._create_pass)

    def _with_verified_caller(
        self, what: str, then: Callable[[UserView, str | None], None]
    ) -> None:
        """A reset or a pass needs a caller this agent verified; an administrator may override
        with a reason. The service enforces it; this only asks for the reason up front."""
        user = self.table.selected_user
        if user is not None:
            self._caller_status(user, what, then)

    @work(thread=True, exclusive=True, group="caller-status")
    def _caller_status(
        self, user: UserView, what: str, then: Callable[[UserView, str | None], None]
    ) -> None:
        from mfa_tui.core.services.caller_check import CallerCheck

        try:
            verified = CallerCheck(self.app.ctx).status(self.actor, user.username).verified  # type: ignore[attr-defined]
        except MfaTuiError as error:
            self.app.call_from_thread(self.app.notify, str(error), severity="error")
            return
        self.app.call_from_thread(self._caller_known, user, verified, what, then)

    def _caller_known(
        self,
        user: UserView,
        verified: bool,
        what: str,
        then: Callable[[UserView, str | None], None],
    ) -> None:
        from mfa_tui.core.kinds import Role

        if verified:
            then(user, None)
        elif self.actor.role == Role.ADMIN:
            from mfa_tui.ui.screens.override_reason import OverrideReasonScreen

            def decided(reason: str | None) -> None:
                if reason:
                    then(user, reason)

            self.app.push_screen(OverrideReasonScreen(what), decided)
        else:
            self.app.notify(
                f"Verify the caller first: press v on {user.username}.", severity="error"
            )

    @work(thread=True, group="user-change")
    def _create_pass(self, user: UserView, reason: str | None) -> None:
        from mfa_tui.core.services.access_pass import AccessPasses

        try:
            issued = AccessPasses(self.app.ctx).create_tap(  # type: ignore[attr-defined]
                self.actor, user.username, override_reason=reason
            )
        except MfaTuiError as error:
            self.app.call_from_thread(self.app.notify, str(error), severity="error")
            return
        use = "once" if issued.single_use else "any number of times"
        self.app.call_from_thread(
            self._show_once,
            f"Temporary access pass for {user.username}: after their password it lets them set up "
            f"a new factor ({use}, until {issued.expires_at:%H:%M} UTC). Read it to them.",
            issued.code or "",
        )

    def _show_once(self, explanation: str, code: str) -> None:
        from mfa_tui.ui.screens.shown_once import ShownOnceScreen

        self.app.push_screen(ShownOnceScreen(explanation, code))

    def action_invite(self) -> None:
        from mfa_tui.ui.screens.confirm import ConfirmScreen

        user = self.table.selected_user
        if user is None:
            return

        def decided(confirmed: bool | None) -> None:
            if confirmed:
                self._invite(user)

        self.app.push_screen(
            ConfirmScreen(
                f"Send {user.username} an enrollment invitation? They set up their factor on "
                "their own screen; any unfinished setup is discarded.",
                "Invite",
            ),
            decided,
        )

    @work(thread=True, group="user-change")
    def _invite(self, user: UserView) -> None:
        from mfa_tui.core.services.access_pass import AccessPasses

        try:
            issued = AccessPasses(self.app.ctx).invite(self.actor, user.username)  # type: ignore[attr-defined]
        except MfaTuiError as error:
            self.app.call_from_thread(self.app.notify, str(error), severity="error")
            return
        self.app.call_from_thread(self.table.load, keep_cursor=True)
        if issued.code is None:
            self.app.call_from_thread(
                self.app.notify, f"Invitation emailed to {user.username} at {issued.sent_to}."
            )
            return
        self.app.call_from_thread(
            self._show_once,
            f"Invitation for {user.username} (no email to send it to): give them this code. At "
            f"the login screen they choose 'I have an invitation' (valid until "
            f"{issued.expires_at:%Y-%m-%d %H:%M} UTC, once).",
            issued.code,
        )

    def action_unlock(self) -> None:
        self._confirm_then(
            "Unlock {name}?",
            "Unlock",
            lambda user: MfaService(self.app.ctx).unlock(self.actor, user.username),  # type: ignore[attr-defined]
            "{name} unlocked.",
        )

    def action_delete_user(self) -> None:
        self._confirm_then(
            "Delete {name}? This cannot be undone.",
            "Delete",
            lambda user: UserService(self.app.ctx).delete(self.actor, user.username),  # type: ignore[attr-defined]
            "{name} deleted.",
        )

    def _confirm_then(
        self, question: str, yes: str, change: Callable[[UserView], object], done: str
    ) -> None:
        from mfa_tui.ui.screens.confirm import ConfirmScreen

        user = self.table.selected_user
        if user is None:
            return

        def decided(confirmed: bool | None) -> None:
            if confirmed:
                self._run_change(user, change, done.format(name=user.username))

        self.app.push_screen(ConfirmScreen(question.format(name=user.username), yes), decided)

    @work(thread=True, group="user-change")
    def _run_change(self, user: UserView, change: Callable[[UserView], object], done: str) -> None:
        try:
            change(user)
        except MfaTuiError as error:
            self.app.call_from_thread(self.app.notify, str(error), severity="error")
            return
        self.app.call_from_thread(self.app.notify, done)
        self.app.call_from_thread(self.table.load, keep_cursor=True)

    def action_toggle_requests(self) -> None:
        """Show only users with an open "Lost your device?" request, or everyone again."""
        spec = self.table.query_spec
        self.table.load(
            UserQuery(spec.search, spec.sort, spec.descending, not spec.reset_requests_only)
        )

    def action_approve_request(self) -> None:
        self._decide_request(approve=True)

    def action_deny_request(self) -> None:
        self._decide_request(approve=False)

    def _decide_request(self, *, approve: bool) -> None:
        from mfa_tui.core.services.reset_requests import ResetRequests

        user = self.table.selected_user
        if user is None or not user.reset_requested:
            self.app.notify("The selected user has no open reset request (q lists them).")
            return
        requests = ResetRequests(self.app.ctx)  # type: ignore[attr-defined]
        if approve:

            def approve_request(user: UserView, reason: str | None) -> None:
                self._confirm_then(
                    "Approve the reset request of {name}? Their factor is removed and they set up a new one at next login.",
                    "Approve",
                    lambda u: requests.approve(self.actor, u.username, override_reason=reason),
                    "Reset approved for {name}: pending user configuration.",
                )

            self._with_verified_caller("Approve the reset request", approve_request)
        else:
            self._confirm_then(
                "Deny the reset request of {name}?",
                "Deny",
                lambda u: requests.deny(self.actor, u.username),
                "Reset request of {name} denied.",
            )

    def action_logs(self) -> None:
        from mfa_tui.ui.screens.audit_log import AuditLogScreen

        self.app.push_screen(AuditLogScreen())

    def action_preferences(self) -> None:
        from mfa_tui.ui.screens.preferences import PreferencesScreen

        self.app.push_screen(PreferencesScreen())
