"""Loopback ports for tests: one to start a server on, and one where every connection is refused.

Tests run in parallel (pytest-xdist), so a port found free and then closed may be taken by another
worker before it is used. ``free_port()`` is only for a server started at once; for "nothing
listens there", ``refusing_port()`` keeps the port bound without listening for as long as it is
needed, so connections are refused and no other test can take it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

HOST = "127.0.0.1"


def free_port() -> int:
    """A loopback TCP port that was free a moment ago, for a server about to start on it."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@contextmanager
def refusing_port() -> Iterator[int]:
    """A loopback TCP port that refuses every connection until the block ends."""
    with socket.socket() as held:
        held.bind((HOST, 0))  # bound and never listening: a connection gets a reset
        yield int(held.getsockname()[1])


@contextmanager
def refusing_udp_port() -> Iterator[int]:
    """A loopback UDP port that answers every datagram with "port unreachable" until the block ends.

    The socket holding the port is connected to another peer, so the kernel delivers it nothing
    from anyone else and answers as if no socket were there.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind((HOST, 0))
        held.connect((HOST, 9))  # the discard port: nothing comes from there
        yield int(held.getsockname()[1])


@contextmanager
def silent_port() -> Iterator[int]:
    """A loopback TCP port whose connections the kernel accepts and nobody ever answers."""
    with socket.socket() as listener:
        listener.bind((HOST, 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])
