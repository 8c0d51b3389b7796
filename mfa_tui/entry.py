"""The ``mfa-tui`` command. ``verify`` is answered by the verify service when one is running,
before the CLI (typer) or the database layer is imported: PAM runs it at every SSH login.
Everything else, and ``verify`` without a service, is the CLI's (``mfa_tui.cli.main``)."""

from __future__ import annotations

import sys
from typing import NoReturn


def main(argv: list[str] | None = None) -> NoReturn:
    no_core_dumps()
    args = list(sys.argv[1:] if argv is None else argv)
    if "verify" in args[:2]:
        from mfa_tui.verify_client import verify

        code = verify(args)
        if code is not None:
            sys.exit(code)
    from mfa_tui.cli import main as cli_main

    cli_main(args)


def no_core_dumps() -> None:
    """A crash must not write this process's memory (the key, decrypted secrets, codes typed) to a
    core file, whatever ``ulimit -c`` the shell allows: the hard limit too, so nothing started from
    here can raise it again."""
    import resource
    from contextlib import suppress

    with suppress(OSError, ValueError):  # a platform without the limit: nothing to lower
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
