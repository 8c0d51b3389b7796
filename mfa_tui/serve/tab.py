"""One browser tab's console, started by ``mfa-tui serve`` for each websocket, not by a person.

The database URL and the key file come from the environment the server passes on
(``MFA_TUI_DATABASE_URL``, ``MFA_TUI_KEY_FILE``), never from the command line, where every local
user could read a password in the URL. The console starts on the login screen, as in a terminal,
and ends itself after ``--idle-minutes`` without a key press or a click.
"""

from __future__ import annotations

import argparse
from datetime import timedelta


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m mfa_tui.serve.tab", description="The console of one browser tab."
    )
    parser.add_argument("--idle-minutes", type=int, required=True)
    args = parser.parse_args(argv)

    from mfa_tui.core.config import Config
    from mfa_tui.ui.app import MfaTuiApp

    MfaTuiApp(Config.resolve(), idle_timeout=timedelta(minutes=args.idle_minutes)).run()


if __name__ == "__main__":
    main()
