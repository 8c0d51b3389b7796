"""The verify client falls back to checking in process only when the service never read the code.

Once a code has reached the service it may have been used up (a TOTP time-step, a Duo push): a
second check in process would refuse a right code as a replay or count a wrong one twice.
A stand-in service on a Unix socket (this process's own uid, so the client trusts it) answers
'busy' or hangs up after reading.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mfa_tui import verify_client
from mfa_tui.verify_protocol import BUSY, Answer


@pytest.fixture
def stand_in(tmp_path: Path) -> Iterator[Callable[[Callable[[socket.socket], None]], dict]]:
    """Start a one-connection service that does ``behave(connection)``; returns the environment
    that points the client at it."""
    threads: list[threading.Thread] = []
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path = tmp_path / "verify.sock"
    listener.bind(str(path))
    listener.listen(1)
    config = tmp_path / "config.toml"
    config.write_text(f'verify_socket = "{path}"\n')

    def start(behave: Callable[[socket.socket], None]) -> dict:
        def serve() -> None:
            connection, _ = listener.accept()
            with connection:
                behave(connection)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        threads.append(thread)
        return {"MFA_TUI_CONFIG": str(config)}

    yield start
    listener.close()
    for thread in threads:
        thread.join(5)


def test_a_busy_service_read_nothing_so_the_command_runs_in_process(
    stand_in: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    environ = stand_in(lambda connection: connection.sendall(Answer(3, BUSY).encode()))
    monkeypatch.setattr("sys.stdin", _stdin("123456\n"))
    assert verify_client.verify(["verify", "bob"], environ) is None
    # The code is handed on to the command in process, unread.
    assert verify_client.sys.stdin.readline() == "123456\n"


def test_a_service_that_read_the_code_and_hung_up_is_not_asked_twice(
    stand_in: Callable, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    received: list[bytes] = []
    environ = stand_in(lambda connection: received.append(connection.recv(4096)))
    monkeypatch.setattr("sys.stdin", _stdin("123456\n"))
    assert verify_client.verify(["verify", "bob"], environ) == 3
    assert b'"123456"' in received[0]
    assert capsys.readouterr().err == f"mfa-tui: {verify_client.NO_ANSWER}\n"


def _stdin(text: str):  # type: ignore[no-untyped-def]
    import io

    return io.StringIO(text)
