"""A slow SMTP server (accepts the connection, never answers) during Configure now in User edit.

While the send waits in its worker, the screen keeps taking keys; then the timeout is said in
one sentence, nothing is left half-done, and Configure now works once the server answers.
"""

from __future__ import annotations

import pytest
from textual.widgets import Button, Input

from mfa_tui.core.access import Actor
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.models import MfaStatus
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import UserView
from tests.helpers.smtp_server import SmtpServer
from tests.ui.conftest import (
    add_user,
    admin_console,
    credentials,
    search_and_open,
    static_text,
    user_row,
    wait_until,
)
from tests.ui.test_factor_email_sms_ui import choose_type, configure_now

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
ALICE = "alice@example.com"
TIMEOUT_SECONDS = 4  # long enough to type into the form, under load, while the send waits


async def test_a_silent_tcp_server_times_out_while_the_screen_stays_responsive(
    ctx: Context, clock: FixedClock, admin: UserView, smtp: SmtpServer, silent_tcp: int
) -> None:
    add_user(ctx, "alice", email=ALICE)
    settings = SettingsStore(ctx)
    settings.set_many(
        Actor.cli(),
        {
            "mfa.supported": "totp,email",
            **smtp.settings(),
            "smtp.port": str(silent_tcp),
            "smtp.timeout": str(TIMEOUT_SECONDS),
        },
    )
    expected = f"did not answer within {TIMEOUT_SECONDS} s;"
    async with admin_console(ctx, clock) as pilot:
        await search_and_open(pilot, "alice")
        await choose_type(pilot, "email")
        # pilot.click, not the ``click`` helper: that one waits for the workers to finish.
        assert await pilot.click(pilot.app.screen.query_one("#configure-now", Button))
        # The send is waiting on the silent server: the form still takes keys meanwhile.
        name = pilot.app.screen.query_one("#display-name", Input)
        name.focus()
        await pilot.press("end", *"Liddell")
        assert name.value.endswith("Liddell")
        assert any(worker.is_running for worker in pilot.app.workers), "the send ended too soon"
        assert expected not in static_text(pilot, "#edit-message"), "the UI waited for the send"
        await wait_until(
            pilot,
            lambda: expected in static_text(pilot, "#edit-message"),
            "the timeout to be shown",
            timeout=TIMEOUT_SECONDS + 20,
        )
        message = static_text(pilot, "#edit-message")
        assert "\n" not in message.strip() and "Traceback" not in message, message
        assert credentials(ctx, "alice") == []  # the enrollment whose code was not sent is gone

        settings.set_many(Actor.cli(), {"smtp.port": str(smtp.port)})  # the server answers again
        await configure_now(pilot, "email", lambda: smtp.last_code_to(ALICE))
    alice = user_row(ctx, "alice")
    assert alice is not None
    assert (alice.mfa_type, alice.mfa_status) == ("email", MfaStatus.CONFIGURED)
    assert alice.display_name is not None and alice.display_name.endswith("Liddell")
    assert credentials(ctx, "alice") == [("email", "active")]
