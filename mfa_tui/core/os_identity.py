"""Who is at the terminal, for ``mfa-tui login``: an OS account, never a name the caller chooses.

On a server ``login`` runs through sudo as the service account that owns the database and the key
(see "Protecting SSH logins" in the README). sudo then sets ``SUDO_USER`` to the account that ran
it, overwriting any value the caller had. So ``SUDO_USER`` is believed only when the process really
runs as the service account (or as root), which nobody but sudo or root can arrange; in every other
case it is the caller's own variable and the answer is the account of the real user id. ``USER``
and ``LOGNAME`` (what ``getpass.getuser`` reads first) are never believed: anyone can set them.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from dataclasses import dataclass

from mfa_tui.core.errors import Refused


def account_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError as error:
        raise Refused(
            f"Cannot tell who you are: user id {uid} has no account name on this machine."
        ) from error


@dataclass(frozen=True)
class TerminalUser:
    name: str
    via: str  # "sudo" (SUDO_USER, under the service account or root) or "uid" (the real user id)


def terminal_user(
    service_account: str,
    environ: Mapping[str, str] | None = None,
    real_uid: int | None = None,
) -> TerminalUser:
    """The OS account of the person who started this process, directly or through sudo."""
    env = os.environ if environ is None else environ
    uid = os.getuid() if real_uid is None else real_uid
    account = account_name(uid)
    sudo_user = env.get("SUDO_USER")
    if not sudo_user or not (uid == 0 or account == service_account):
        return TerminalUser(account, "uid")
    # sudo sets SUDO_UID with SUDO_USER: both must name the same account, or neither is believed.
    try:
        consistent = str(pwd.getpwnam(sudo_user).pw_uid) == env.get("SUDO_UID")
    except KeyError:
        consistent = False
    if not consistent:
        raise Refused(
            "Cannot tell who you are: SUDO_USER and SUDO_UID disagree; run 'mfa-tui login' "
            "through the sudo rule, not with a hand-made environment."
        )
    return TerminalUser(sudo_user, "sudo")
