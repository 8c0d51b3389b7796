"""The console in a real browser: ``mfa-tui serve`` driven through Debian's Chromium, headless.

``mfa-tui serve`` runs as a person starts it, on a free loopback port, over a new SQLite database
holding the demo users and an administrator with an Authenticator. The test types what a person
would type into the browser tab — the administrator's password and the code pyotp computes,
"/" and a name, the keys to Type, Authenticator and "Configure now" — takes a PNG screenshot of
the page and decodes the QR code in it with zbar. It validates the code computed from the decoded
secret, presses Update, and the database holds bob's Authenticator, configured, with that secret.
Then it downloads the audit log from Logs, as the browser saves it, and finds the change in it;
quitting ends the tab's process and the page offers to log in again.

Skipped, with the reason, where Chromium, the playwright package or zbar is missing.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest

from mfa_tui.core.services.users import UserService
from tests.helpers.browser import (
    PROJECT,
    ConsoleTab,
    Prepared,
    ServedConsole,
    mfa_tui,
    open_browser,
)
from tests.helpers.qr_decode import decode_qr_png

pytestmark = pytest.mark.slow

USER = "bob"  # a demo login without MFA
TABS_FROM_USERNAME_TO_TYPE = 7  # display name, email, phone, role, enabled, new password, Type


def log_in(tab: ConsoleTab, database: Prepared) -> None:
    """Username, Password, then the Authenticator code, each waited for on the screen."""
    tab.wait_for("Username", "Password", "Log in")
    tab.focus()
    tab.type(database.admin)
    tab.wait_for(database.admin)
    tab.press("Enter")
    tab.wait_for_focus("Password")
    tab.type(database.admin_password)
    tab.wait_for("•" * len(database.admin_password))
    tab.press("Enter")
    tab.wait_for("Enter the code your authenticator app shows.")  # a new screen: Code has the focus
    code = pyotp.TOTP(database.admin_secret).now()
    tab.type(code)
    tab.wait_for(code)
    tab.press("Enter")
    tab.wait_for("Administration – Users")


def test_configure_totp_now_in_the_browser_and_scan_the_qr_from_a_screenshot(
    database: Prepared, served: ServedConsole, tmp_path: Path
) -> None:
    try:
        import pyzbar.pyzbar  # noqa: F401
    except ImportError as exc:  # also raised when the zbar library itself is missing
        pytest.skip(f"QR decoding needs pyzbar and the zbar library (libzbar0): {exc}")
    with open_browser() as browser:
        tab = ConsoleTab(browser, served.url)
        log_in(tab, database)

        # "/" search, Enter to the table, Enter to edit the one match. The footer lists "Edit"
        # only while the table has the focus, so each key waits for the focus to move.
        tab.wait_for_footer("Edit")
        tab.press("/")
        tab.wait_for_footer("Edit", shown=False)
        tab.type(USER)
        tab.wait_for(f"1 user matching '{USER}'")
        tab.press("Enter")
        tab.wait_for_footer("Edit")
        tab.press("Enter")
        tab.wait_for(f"User edit – {USER}")
        # Type: Tab there from the username field, Enter opens the list, Down and Enter choose;
        # then past "Configure later by user" to "Configure now".
        tab.press(*["Tab"] * TABS_FROM_USERNAME_TO_TYPE, "Enter")
        tab.wait_for("Authenticator (TOTP)")
        tab.press("ArrowDown", "Enter")
        tab.wait_for("Configure now")
        tab.press("Tab", "Tab", "Enter")
        tab.wait_for("Secret for manual entry", "Code from the app")

        # What a phone's camera would see: the page as pixels.
        screenshot = tab.screenshot(tmp_path / "configure-now.png")
        [uri] = decode_qr_png(screenshot)
        parsed = urlparse(uri)
        assert (parsed.scheme, parsed.netloc, parsed.path) == (
            "otpauth",
            "totp",
            f"/mfa-tui:{USER}",
        )
        [secret] = parse_qs(parsed.query)["secret"]
        grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
        tab.wait_for(f"Secret for manual entry: {grouped}")

        code = pyotp.TOTP(secret).now()
        tab.type(code)
        tab.wait_for(code)
        tab.press("Enter")
        tab.wait_for("Code verified")
        tab.press("Control+s")  # Update
        tab.wait_for("Administration – Users")

        context = database.context()
        try:
            [row] = [user for user in UserService(context).list(search=USER)]
        finally:
            context.close()
        assert (row.username, row.mfa_type, row.mfa_status) == (USER, "totp", "configured")
        # The database keeps the secret the QR code carried: the next time step's code (the
        # current one is spent) passes `mfa-tui verify`.
        next_code = pyotp.TOTP(secret).at(datetime.now(UTC), counter_offset=1)
        verified = subprocess.run(
            mfa_tui(database, "verify", USER),
            input=f"{next_code}\n",
            cwd=PROJECT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert verified.returncode == 0, verified.stderr

        # Logs, "d": the browser downloads the audit log as CSV, the change in it.
        tab.wait_for_footer("Edit")
        tab.press("l")
        tab.wait_for_footer("Download CSV")
        name, text = tab.download("d")
        assert re.fullmatch(r"mfa-tui-audit-log-\d{8}-\d{6}\.csv", name)
        rows = list(csv.DictReader(io.StringIO(text)))
        assert rows and list(rows[0]) == ["seq", "at", "actor", "action", "target", "details"]
        assert any(
            row["actor"] == database.admin and row["target"] == USER and "mfa" in row["action"]
            for row in rows
        ), text
        assert [int(row["seq"]) for row in rows] == sorted(
            (int(row["seq"]) for row in rows), reverse=True
        )

        # Quitting (as an idle timeout does) ends the process; the page says so and offers a new
        # session.
        tab.press("Control+q")
        tab.page.get_by_text("Session ended.").wait_for(state="visible")
        assert tab.page.get_by_role("button", name="Log in again").is_visible()
        assert served.wait_for_tabs(0) == []
        tab.close()
