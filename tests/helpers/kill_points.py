"""SIGKILL a real process at its N-th database step, inside or between transactions.

The child (forked from a forkserver that preloaded the test module, so it starts in milliseconds)
arms SQLAlchemy listeners on every engine: each SQL statement about to run in a write transaction
(``Database.write()``) and each COMMIT about to be sent is one *kill point*. Statements of read
sessions are not points: killed before one, the database is as it is before the next write. At point N the child tells the parent what it is about to do and
blocks; the parent kills it with SIGKILL, so the kill lands with the transaction open (or between
two transactions when the point is the first statement of the next step). A child that finishes
before point N reports ``None``: every point has then been tried.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from sqlalchemy import Connection as Connection_
from sqlalchemy import Engine, event

from mfa_tui.core.db import _WRITE as WRITE_OPTION

BLOCK_SECONDS = 600  # far longer than the parent ever waits: the kill always comes first


@dataclass(frozen=True)
class Kill:
    point: int
    label: str | None  # the statement (first words) or "COMMIT"; None: the child finished
    sent: list[Any]  # what the child sent before it was killed (e.g. a new secret)


def arm(kill_at: int, channel: Connection) -> None:
    """In the child: block at the ``kill_at``-th statement or commit of any engine."""
    count = 0

    def point(label: str) -> None:
        nonlocal count
        count += 1
        if count == kill_at:
            channel.send(("killed-at", label))
            time.sleep(BLOCK_SECONDS)

    def before_statement(
        conn: Connection_, _cursor: object, statement: str, *_args: object
    ) -> None:
        if conn.get_execution_options().get(WRITE_OPTION):
            point(" ".join(statement.split()[:3]))

    def before_commit(conn: Connection_) -> None:
        if conn.get_execution_options().get(WRITE_OPTION):
            point("COMMIT")

    event.listen(Engine, "before_cursor_execute", before_statement)
    event.listen(Engine, "commit", before_commit)


def _child(
    scenario: Callable[..., None], args: tuple[Any, ...], kill_at: int, channel: Connection
) -> None:
    scenario(*args, arm=lambda: arm(kill_at, channel), send=channel.send)
    channel.send(("finished", None))


def run_killed(
    module: str, scenario: Callable[..., None], args: tuple[Any, ...], kill_at: int
) -> Kill:
    """Run ``scenario(*args, arm=..., send=...)`` in a child killed at point ``kill_at``.

    The scenario does its setup (opening the database), calls ``arm()``, then the steps under
    test; ``send(value)`` hands a value to the parent at once (it survives the kill).
    """
    processes = multiprocessing.get_context("forkserver")
    processes.set_forkserver_preload([module])
    receiver, sender = processes.Pipe(duplex=False)
    child = processes.Process(target=_child, args=(scenario, args, kill_at, sender))
    child.start()
    sender.close()
    sent: list[Any] = []
    label: str | None = None
    try:
        while True:
            if not receiver.poll(60):
                raise AssertionError(f"the child went silent before kill point {kill_at}")
            message = receiver.recv()
            if isinstance(message, tuple) and message[:1] == ("killed-at",):
                label = message[1]
                os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
                break
            if isinstance(message, tuple) and message[:1] == ("finished",):
                break
            sent.append(message)
    finally:
        child.join(30)
        if child.is_alive():
            child.kill()
        receiver.close()
    expected = -signal.SIGKILL if label is not None else 0
    assert child.exitcode == expected, (kill_at, label, child.exitcode)
    return Kill(kill_at, label, sent)


def every_point(
    module: str, scenario: Callable[..., None], args_for: Callable[[int], tuple[Any, ...]]
) -> Iterator[Kill]:
    """Kill point 1, 2, 3, ... each in a fresh child, until one child finishes (yielded last)."""
    point = 0
    while True:
        point += 1
        kill = run_killed(module, scenario, args_for(point), point)
        yield kill
        if kill.label is None:
            return
