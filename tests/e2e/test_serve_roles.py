"""SPEC §1 in the browser view: ``mfa-tui serve`` through Debian's Chromium, one tab per role.

The same rules as on a terminal (tests/ui/test_authorization_screens.py), seen through the page a
person uses: a helpdesk agent edits a plain user, but an administrator's record and Server
Settings are refused with the sentence from the core, each refusal audited; a plain user lands on
Preferences – Multi-factor and no key reaches Administration; an administrator opening their own
record is sent to Preferences for their own MFA. (A tab that has not logged in is covered by
tests/e2e/test_serve_security.py.)

Skipped, with the reason, where Chromium or the playwright package is missing.
"""

from __future__ import annotations

import pyotp
import pytest

from mfa_tui.core.audit import list_events
from tests.helpers.browser import (
    ConsoleTab,
    Prepared,
    ServedConsole,
    open_browser,
)

pytestmark = pytest.mark.slow

HELPDESK_ON_ADMIN = "Helpdesk staff can only act on users with the role user."
ADMINS_ONLY = "Only administrators can do that."


def sign_in(tab: ConsoleTab, username: str, password: str) -> None:
    tab.wait_for("Username", "Password", "Log in")
    tab.focus()
    tab.type(username)
    tab.wait_for(username)
    tab.press("Enter")
    tab.wait_for_focus("Password")
    tab.type(password)
    tab.wait_for("•" * len(password))
    tab.press("Enter")


def find(tab: ConsoleTab, username: str) -> None:
    """ "/" and the name, Enter: the table has the focus on the one match."""
    tab.wait_for_footer("Edit")
    tab.press("/")
    tab.wait_for_footer("Edit", shown=False)
    tab.type(username)
    tab.wait_for(f"1 user matching '{username}'")
    tab.press("Enter")
    tab.wait_for_footer("Edit")


def denials(database: Prepared) -> list[tuple[str, str | None, str]]:
    context = database.context()
    try:
        with context.db.read() as session:
            events = list_events(session)
    finally:
        context.close()
    return [(e.actor, e.target, str(e.details["action"])) for e in events if e.action == "denied"]


def test_each_role_in_a_browser_tab_gets_what_spec_section_1_gives_it(
    database: Prepared, served: ServedConsole
) -> None:
    with open_browser() as browser:
        # Helpdesk: a plain user's record opens; an administrator's and Server Settings do not.
        tab = ConsoleTab(browser, served.url)
        sign_in(tab, "helpdesk", database.passwords["helpdesk"])
        tab.wait_for("Administration – Users")
        find(tab, "bob")
        tab.press("Enter")
        tab.wait_for("User edit – bob")
        tab.press("Escape")
        tab.wait_for("Administration – Users")
        find(tab, database.admin)
        tab.press("Enter")
        tab.wait_for(HELPDESK_ON_ADMIN)
        assert "User edit" not in tab.text()
        tab.press("s")
        tab.wait_for(ADMINS_ONLY)
        assert "Server Settings" not in tab.text()
        tab.close()
        assert denials(database) == [
            ("helpdesk", None, "change server settings"),
            ("helpdesk", database.admin, "edit a user's general fields"),
        ]

        # A plain user: Preferences, and no key of the staff screens goes anywhere.
        tab = ConsoleTab(browser, served.url)
        sign_in(tab, "bob", database.passwords["bob"])
        tab.wait_for("Preferences – Multi-factor")
        for key in ("l", "s", "n", "/", "u", "r", "Delete", "p"):
            tab.press(key)
        tab.press("Control+p")  # the command palette lists no Administration entry
        tab.wait_for("Preferences – Multi-factor")
        tab.type("Admin")
        tab.wait_for("Admin")
        screen = tab.text()
        assert "Administration – Users" not in screen and "Server Settings" not in screen, screen
        tab.close()

        # An administrator: their own record opens, but its MFA points to Preferences.
        tab = ConsoleTab(browser, served.url)
        sign_in(tab, database.admin, database.admin_password)
        tab.wait_for("Enter the code your authenticator app shows.")
        tab.type(pyotp.TOTP(database.admin_secret).now())
        tab.press("Enter")
        tab.wait_for("Administration – Users")
        find(tab, database.admin)
        tab.press("Enter")
        tab.wait_for(f"User edit – {database.admin}", "Change your own MFA in Preferences")
        tab.close()
    assert len(denials(database)) == 2  # the plain user's keys went nowhere, so nothing to refuse
