"""``verify`` through the verify service (``mfa-tui verify-service``), when one answers.

PAM runs ``mfa-tui verify --pam`` at every SSH login; opening the database in that process
costs most of a second of imports. Here the command reads the code, sends it over the service's
Unix socket and prints the service's answer, importing only the standard library and the light
``verify_protocol``: no SQLAlchemy, SQLModel, typer or Textual.

The service serves the database of its config file, so it is asked only when the command would
use that same file: not when ``--db``, ``--key-file`` or their environment variables choose
another database, and not for a file named by ``MFA_TUI_CONFIG`` without a ``verify_socket``.
When no service answers, ``None`` tells the caller to run the command in process: the same
answer, only slower.
"""

from __future__ import annotations

import io
import os
import socket
import struct
import sys
from collections.abc import Mapping
from pathlib import Path

from mfa_tui.core.config import (
    CONFIG_ENV_VAR,
    DATABASE_ENV_VAR,
    DEFAULT_VERIFY_SOCKET,
    KEY_FILE_ENV_VAR,
    SECRET_KEY_ENV_VAR,
    ConfigFile,
    ConfigFileError,
)
from mfa_tui.core.text import printable
from mfa_tui.verify_protocol import (
    BUSY,
    MAX_ANSWER_BYTES,
    Answer,
    CommandFailed,
    Request,
    decode_answer,
    pam_request,
    read_stdin_line,
)

CONNECT_SECONDS = 2.0
# Long enough for the slowest factor (a Duo push waits for the person's phone).
ANSWER_SECONDS = 120.0
_PEERCRED = struct.Struct("3i")


# Once the code has reached the service it may have been used up (a TOTP time-step, a push sent):
# checking it again in process would refuse a right code as a replay, or count a wrong one twice.
NO_ANSWER = (
    "The verify service stopped answering before it said whether the code was accepted; try again."
)


class _ServiceGone(Exception):
    """The service never read the request (it could not be sent, or the service was busy)."""


def verify(argv: list[str], environ: Mapping[str, str] | None = None) -> int | None:
    """The exit code of ``mfa-tui ARGV`` answered by the verify service, or None when the
    service cannot answer it (another command, other options, no service): run it in process."""
    env = os.environ if environ is None else environ
    command = _verify_arguments(argv)
    if command is None or any(
        env.get(name) for name in (DATABASE_ENV_VAR, KEY_FILE_ENV_VAR, SECRET_KEY_ENV_VAR)
    ):
        return None
    try:
        path = socket_path(env)
    except ConfigFileError:
        return None  # the command in process says what is wrong with the file
    connection = _connect(path) if path is not None else None
    if connection is None:
        return None
    name, pam, require = command
    with connection:
        untrusted = _untrusted_server(connection, path)
        if untrusted:
            return _finish(Answer(3, untrusted))
        try:
            if pam:
                user, code, actor = pam_request(None, False, env)
            else:
                user, code, actor = name, read_stdin_line("a code"), _cli_actor()
        except CommandFailed as failure:
            return _finish(Answer(failure.code, str(failure)))
        request = Request(user, code, actor, require=require, pam=pam)
        try:
            answer = _exchange(connection, request)
        except _ServiceGone:
            # Never read by the service: the command in process reads the same code again.
            sys.stdin = _Replay(code + "\n", sys.stdin)
            return None
    if answer.asks_again:
        print(answer.message, file=sys.stderr)
        try:
            code = read_stdin_line("the answer to the second prompt")
        except CommandFailed as failure:
            return _finish(Answer(failure.code, str(failure)))
        second = Request(
            user, code, actor, require=require, pam=pam, state=answer.state, first_round=False
        )
        answer = _ask_again(path, second)
    return _finish(answer)


def socket_path(environ: Mapping[str, str]) -> Path | None:
    """The config file's ``verify_socket``; else the default one for the system config (a file
    that ``MFA_TUI_CONFIG`` names without a socket has no service)."""
    file = ConfigFile.load(environ)
    if file.verify_socket is not None:
        return file.verify_socket
    return None if environ.get(CONFIG_ENV_VAR) else DEFAULT_VERIFY_SOCKET


def _verify_arguments(argv: list[str]) -> tuple[str | None, bool, bool] | None:
    """(NAME, --pam, --require) for ``[--debug] verify NAME|--pam [--require]``; anything else
    (--send, --help, global options, usage mistakes) is the full command's to parse."""
    words = [arg for arg in argv if arg != "--debug"]
    if words[:1] != ["verify"]:
        return None
    names = [word for word in words[1:] if not word.startswith("-")]
    flags = [word for word in words[1:] if word.startswith("-")]
    if len(names) > 1 or not set(flags) <= {"--pam", "--require"} or len(set(flags)) != len(flags):
        return None
    pam = "--pam" in flags
    if pam == bool(names) or not all(_is_text(word) for word in names):
        return None
    return (names[0] if names else None), pam, "--require" in flags


def _is_text(word: str) -> bool:
    try:
        word.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _cli_actor() -> str:
    from mfa_tui.core.access import Actor

    return f"{Actor.cli().name}:verify"


def _connect(path: Path) -> socket.socket | None:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(CONNECT_SECONDS)
    try:
        connection.connect(str(path))
    except OSError:  # no socket, nobody listening, or not ours to reach
        connection.close()
        return None
    return connection


def _untrusted_server(connection: socket.socket, path: Path) -> str | None:
    """Why the process behind the socket is not to be given a code, or None.

    It must run as root, as this process's account or as the service account: a socket that
    someone else managed to put there would otherwise collect codes."""
    _pid, uid, _gid = _PEERCRED.unpack(
        connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    )
    if uid in (0, os.geteuid()):
        return None
    import pwd

    from mfa_tui.core.config import service_account

    try:
        if pwd.getpwnam(service_account()).pw_uid == uid:
            return None
    except (KeyError, ConfigFileError):
        pass
    return (
        f"The verify socket {path} is served by uid {uid}, not root or the service account; "
        "no code was sent to it."
    )


def _exchange(connection: socket.socket, request: Request) -> Answer:
    connection.settimeout(ANSWER_SECONDS)
    try:
        connection.sendall(request.encode())
    except OSError:
        # A service that refuses this peer answers and closes without reading: its answer may be
        # waiting. Only with nothing to read was the service gone before the code reached it.
        if not _answer_waiting(connection):
            raise _ServiceGone from None
    try:
        received = b""
        while b"\n" not in received and len(received) <= MAX_ANSWER_BYTES:
            chunk = connection.recv(MAX_ANSWER_BYTES)
            if not chunk:
                break
            received += chunk
        answer = decode_answer(received.partition(b"\n")[0])
    except (OSError, ValueError):
        return Answer(3, NO_ANSWER)
    if answer.exit_code == 3 and answer.message == BUSY:
        raise _ServiceGone  # refused before reading: the code is untouched
    return answer


def _answer_waiting(connection: socket.socket) -> bool:
    try:
        return bool(connection.recv(1, socket.MSG_PEEK))
    except OSError:
        return False


def _ask_again(path: Path, request: Request) -> Answer:
    connection = _connect(path)
    try:
        if connection is None:
            raise _ServiceGone
        with connection:
            return _exchange(connection, request)
    except _ServiceGone:
        return Answer(
            3, "The verify service stopped answering during the second question; try again."
        )


def _finish(answer: Answer) -> int:
    """Print the answer as the command in process does: a failure on one ``mfa-tui:`` line."""
    if answer.exit_code == 0:
        print(answer.message, file=sys.stderr)
    else:
        print(f"mfa-tui: {printable(answer.message)}", file=sys.stderr)
    return answer.exit_code


class _Replay(io.TextIOBase):
    """Standard input with the line already read put back in front."""

    def __init__(self, first_line: str, rest: io.TextIOBase) -> None:
        self._first: str | None = first_line
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        if self._first is None:
            return self._rest.readline(size)
        line, self._first = self._first, None
        return line

    def isatty(self) -> bool:
        return self._rest.isatty()
