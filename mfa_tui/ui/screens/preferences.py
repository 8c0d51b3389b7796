"""Preferences – Multi-factor: the signed-in user's own type and status."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from mfa_tui.core.models import MFA_STATUS_LABELS, MFA_TYPE_LABELS, MfaStatus, MfaType
from mfa_tui.core.services.users import UserService
from mfa_tui.ui.display import plain


class PreferencesScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("x", "app.log_out", "Log out"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="preferences"):
            yield Static("Preferences – Multi-factor", classes="section-title")
            yield Static("", id="own-mfa")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Preferences – Multi-factor"
        signed_in = self.app.signed_in  # type: ignore[attr-defined]
        user = UserService(self.app.ctx).get_by_id(signed_in.user.id)  # type: ignore[attr-defined]
        self.query_one("#own-mfa", Static).update(
            plain(
                f"Signed in as {user.username}.\n"
                f"Type: {MFA_TYPE_LABELS[MfaType(user.mfa_type)]}\n"
                f"Status: {MFA_STATUS_LABELS[MfaStatus(user.mfa_status)]}"
            )
        )

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()
