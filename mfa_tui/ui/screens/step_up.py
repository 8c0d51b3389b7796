"""Step-up: prove the current second factor again before changing it (valid five minutes)."""

from __future__ import annotations

from textual.binding import Binding

from mfa_tui.core.services.auth import NextStep
from mfa_tui.core.services.mfa import FACTOR_METHODS, VerifyOutcome
from mfa_tui.ui.screens.second_factor import SecondFactorScreen


class StepUpScreen(SecondFactorScreen):
    """The second-factor prompt, answering the screen that asked instead of starting a session."""

    BINDINGS = [Binding("escape", "back", "Cancel")]
    # Changing one's own factor needs that factor (or a backup code), not the mailbox.
    METHODS = FACTOR_METHODS

    def on_mount(self) -> None:
        super().on_mount()
        self.title = "Confirm it is you"
        self.query_one("#lost-device").display = False

    def after_proof(self) -> NextStep | None:
        return None  # nothing follows but the change that asked for the proof

    def accepted(self, outcome: VerifyOutcome, step: NextStep | None) -> None:
        self.app.record_proof()  # type: ignore[attr-defined]
        self.dismiss(True)

    def action_back(self) -> None:
        self.dismiss(False)
