"""``mfa-tui verify-service``: one long-running process that answers ``verify`` on a Unix socket.

A ``verify`` process that opens the database itself spends most of a second importing SQLAlchemy
before it checks anything; PAM runs one at every SSH login. The service keeps one open context
and answers each connection's one request, as sssd answers its PAM module: the client
(``verify_client``) imports nothing heavy. The service only transports: policy, ``--require``,
replay refusal, lockout and audit are ``MfaService.verify``'s, and the answer is
``verify_protocol.answer_for``'s, exactly as in process.

Only root and the service's own account are answered (SO_PEERCRED, whatever the file modes let
through); requests are one line of at most ``MAX_REQUEST_BYTES``, read within
``REQUEST_SECONDS``; a bad request gets a refusal and never ends the service; SIGTERM stops it
after the requests in flight are answered.

``mfa-tui keys rotate`` replaces the key file: before each answer the service looks at the file
(one ``stat``) and, when it is another file than the one it opened with, opens the database again
with the new key, so logins go on working without a restart.
"""

from __future__ import annotations

import os
import pwd
import signal
import socket
import socketserver
import struct
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from contextlib import suppress
from pathlib import Path

from mfa_tui.core.config import Config
from mfa_tui.core.context import Context, open_context
from mfa_tui.core.errors import InputError, MfaTuiError
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.text import printable
from mfa_tui.verify_protocol import BUSY, MAX_REQUEST_BYTES, Answer, Request, answer_for

# A client has this long to send its request; verifying may take longer (RADIUS, a Duo push).
REQUEST_SECONDS = 5.0
# After a key rotation, how long the old context stays open for the answers in flight (longer
# than any verify takes: a Duo push waits at most a minute).
RETIRE_SECONDS = 180.0
# Requests answered at once; more wait in the listen queue or get "busy".
MAX_CONNECTIONS = 16
_PEERCRED = struct.Struct("3i")  # pid, uid, gid


def peer_uid(connection: socket.socket) -> int:
    _pid, uid, _gid = _PEERCRED.unpack(
        connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    )
    return uid


def allowed_uids(extra: Iterable[str] = ()) -> frozenset[int]:
    """Root, this process's own account, and the accounts named (names or numbers)."""
    uids = {0, os.geteuid()}
    for account in extra:
        if account.isdigit():
            uids.add(int(account))
            continue
        try:
            uids.add(pwd.getpwnam(account).pw_uid)
        except KeyError:
            raise InputError(f"There is no account named '{account}' to allow.") from None
    return frozenset(uids)


def log(message: str) -> None:
    print(f"mfa-tui verify-service: {message}", file=sys.stderr, flush=True)


class _Connection(socketserver.BaseRequestHandler):
    server: VerifyServer

    def handle(self) -> None:
        connection: socket.socket = self.request
        uid = peer_uid(connection)
        if uid not in self.server.allowed:
            log(f"refused a client running as uid {uid}")
            self._reply(
                Answer(
                    1,
                    f"Refused: the verify service answers only root and its own account, "
                    f"not uid {uid}.",
                )
            )
            return
        try:
            request = Request.decode(self._read_line())
        except ValueError as problem:
            log(f"refused a bad request from uid {uid}: {problem}")
            self._reply(Answer(2, f"The verify service refused the request: {problem}."))
            return
        self._reply(self.server.answer(request))

    def _read_line(self) -> bytes:
        connection: socket.socket = self.request
        connection.settimeout(REQUEST_SECONDS)
        received = b""
        try:
            while b"\n" not in received:
                chunk = connection.recv(MAX_REQUEST_BYTES + 1 - len(received))
                if not chunk:
                    break
                received += chunk
                if len(received) > MAX_REQUEST_BYTES:
                    raise ValueError(f"the request is longer than {MAX_REQUEST_BYTES} bytes")
        except TimeoutError:
            raise ValueError(f"no complete request within {REQUEST_SECONDS:g} s") from None
        line, newline, _ = received.partition(b"\n")
        if not newline:
            raise ValueError("the request ended before its end of line")
        return line

    def _reply(self, answer: Answer) -> None:
        connection: socket.socket = self.request
        connection.settimeout(REQUEST_SECONDS)
        with suppress(OSError):  # the client left: its loss, not the service's
            connection.sendall(answer.encode())


class VerifyServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """One thread per connection, at most ``MAX_CONNECTIONS`` at once."""

    daemon_threads = False
    block_on_close = True  # server_close() waits for the answers in flight
    request_queue_size = 64

    def __init__(
        self,
        path: Path,
        context: Context,
        allowed: frozenset[int],
        config: Config | None = None,
        key_seen: tuple[int, int, int] | None = None,
    ) -> None:
        """``key_seen``: the key file as it was *before* ``context`` opened it, so a rotation
        between that open and this start is followed too."""
        self.context = context
        self.allowed = allowed
        self._config = config  # to open the database again after a key rotation
        self._key_seen = key_seen
        self._reopening = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(str(path), _Connection)

    def current_context(self) -> Context:
        """The open context, opened again first if the key file was replaced (keys rotate)."""
        if self._config is None or key_file_identity(self._config) == self._key_seen:
            return self.context
        with self._reopening:
            seen = key_file_identity(self._config)
            if seen != self._key_seen:
                retired, self.context = self.context, open_context(self._config)
                self._key_seen = seen
                # Answers in flight finish on the old context; then its connections are closed.
                closer = threading.Timer(RETIRE_SECONDS, retired.close)
                closer.daemon = True
                closer.start()
                log("the key file was replaced (keys rotate): opened the database with the new key")
        return self.context

    def answer(self, request: Request) -> Answer:
        try:
            outcome = MfaService(self.current_context()).verify(
                request.user,
                request.code,
                actor_name=request.actor,
                state=request.state,
                exact_username=request.pam,
            )
        except MfaTuiError as error:
            return Answer(error.exit_code, str(error))
        except Exception as error:  # the database went away, a bug: answer, log, carry on
            log(f"verifying {printable(request.user)} failed:\n{traceback.format_exc()}")
            from sqlalchemy.exc import SQLAlchemyError

            from mfa_tui.core.db import database_error

            if isinstance(error, SQLAlchemyError):
                return Answer(3, str(database_error(error)))
            return Answer(
                3, f"The verify service failed: {type(error).__name__} (see the service's log)."
            )
        return answer_for(
            outcome, require=request.require, pam=request.pam, first_round=request.first_round
        )

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        if not self._slots.acquire(blocking=False):
            with suppress(OSError):
                request.sendall(Answer(3, BUSY).encode())
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: object, client_address: object) -> None:
        log(f"a connection failed:\n{traceback.format_exc()}")


def key_file_identity(config: Config | None) -> tuple[int, int, int] | None:
    """Which file the key file is now (device, inode, modification time); None if there is none to
    follow (a key given in the environment, no config) or it cannot be read right now."""
    if config is None or config.secret_key_text:
        return None
    try:
        found = os.stat(config.key_file)
    except OSError:
        return None
    return found.st_dev, found.st_ino, found.st_mtime_ns


def bind(
    path: Path,
    context: Context,
    allowed: frozenset[int],
    config: Config | None = None,
    key_seen: tuple[int, int, int] | None = None,
) -> VerifyServer:
    """Listen on ``path`` (mode 0660; its folder, if created here, 0700)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.is_socket():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()  # left by a service that did not stop cleanly
        else:
            raise InputError(f"Another verify service is listening on {path}; stop it first.")
        finally:
            probe.close()
    elif path.exists():
        raise InputError(
            f"{path} exists and is not a socket; remove it or choose another --socket."
        )
    # The socket is born with its mode: no moment when others could connect.
    previous = os.umask(0o117)
    try:
        return VerifyServer(path, context, allowed, config, key_seen)
    except OSError as error:
        raise InputError(f"Cannot listen on {path}: {error.strerror or error}.") from None
    finally:
        os.umask(previous)


def run(
    config: Config, open_context_now: Callable[[], Context], path: Path, allowed: frozenset[int]
) -> None:
    """Answer until SIGTERM or SIGINT, then finish the answers in flight and remove the socket."""
    key_seen = key_file_identity(config)  # before the open: a rotation right after it is followed
    server = bind(path, open_context_now(), allowed, config, key_seen)

    def stop(_signal: int, _frame: object) -> None:
        # shutdown() waits for serve_forever(), which runs in this very thread: ask from another.
        threading.Thread(target=server.shutdown, daemon=True).start()

    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, stop)
    uids = ", ".join(str(uid) for uid in sorted(allowed))
    log(f"listening on {path} for uids {uids}")
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        path.unlink(missing_ok=True)
        log("stopped")
