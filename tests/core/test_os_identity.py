"""Who is at the terminal for ``mfa-tui login``: the real user id's account, or SUDO_USER only when
sudo (running the service account) or root can have set it; never USER or LOGNAME.

Uses the accounts every Debian system has: root (0), daemon (1) and nobody (65534).
"""

from __future__ import annotations

import pytest

from mfa_tui.core.errors import Refused
from mfa_tui.core.os_identity import TerminalUser, terminal_user

NOBODY = 65534
DAEMON = 1
SERVICE = "daemon"  # stands in for the service account that owns the database


def test_without_sudo_it_is_the_real_user_ids_account() -> None:
    assert terminal_user(SERVICE, {}, real_uid=NOBODY) == TerminalUser("nobody", "uid")
    assert terminal_user(SERVICE, {}, real_uid=0) == TerminalUser("root", "uid")


def test_user_and_logname_are_never_believed() -> None:
    spoofed = {"USER": "root", "LOGNAME": "root", "USERNAME": "root"}
    assert terminal_user(SERVICE, spoofed, real_uid=NOBODY).name == "nobody"


def test_sudo_to_the_service_account_names_the_caller() -> None:
    environ = {"SUDO_USER": "nobody", "SUDO_UID": str(NOBODY)}
    assert terminal_user(SERVICE, environ, real_uid=DAEMON) == TerminalUser("nobody", "sudo")
    # Root (sudo -i, or sudo to root) is trusted the same way.
    assert terminal_user(SERVICE, environ, real_uid=0) == TerminalUser("nobody", "sudo")


def test_a_hand_made_sudo_user_is_ignored_outside_the_service_account() -> None:
    """Anyone can set SUDO_USER; only sudo can make the process run as the service account."""
    environ = {"SUDO_USER": "root", "SUDO_UID": "0"}
    assert terminal_user(SERVICE, environ, real_uid=NOBODY) == TerminalUser("nobody", "uid")
    # Another service account name in the config: daemon is then an ordinary caller.
    assert terminal_user("mfa-tui", environ, real_uid=DAEMON) == TerminalUser("daemon", "uid")


@pytest.mark.parametrize(
    "environ",
    [
        {"SUDO_USER": "nobody", "SUDO_UID": "0"},
        {"SUDO_USER": "nobody"},
        {"SUDO_USER": "no-such-account-here", "SUDO_UID": str(NOBODY)},
    ],
    ids=["uid of another account", "no SUDO_UID", "unknown account"],
)
def test_inconsistent_sudo_variables_are_refused(environ: dict[str, str]) -> None:
    with pytest.raises(Refused) as refused:
        terminal_user(SERVICE, environ, real_uid=DAEMON)
    assert "SUDO_USER and SUDO_UID disagree" in str(refused.value)


def test_a_user_id_without_an_account_is_refused() -> None:
    with pytest.raises(Refused) as refused:
        terminal_user(SERVICE, {}, real_uid=4_242_424)
    assert str(refused.value) == (
        "Cannot tell who you are: user id 4242424 has no account name on this machine."
    )
