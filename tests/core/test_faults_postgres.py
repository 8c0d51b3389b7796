"""PostgreSQL stopped in the middle of a session and started again, on a private cluster.

The same open mfa-tui context (what a running console holds) fails with one clear sentence
while the server is down, saves nothing, and works again once it is back — without reopening.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mfa_tui.core import db
from mfa_tui.core.access import Actor
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.config import SECRET_KEY_ENV_VAR, Config
from mfa_tui.core.context import open_context
from mfa_tui.core.errors import StorageError
from mfa_tui.core.services.users import UserService
from tests.cli.conftest import Cli, assert_one_error_line
from tests.helpers.private_postgres import PrivateCluster, private_cluster

pytestmark = pytest.mark.slow


def test_a_server_that_never_answers_is_given_up_on_within_the_connect_timeout(
    tmp_path: Path, silent_tcp: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that takes the connection and says nothing (a half-dead host, a firewall that
    drops packets) costs the connect timeout, not the system's two minutes, then one sentence."""
    monkeypatch.setattr(db, "POSTGRES_CONNECT_TIMEOUT_SECONDS", 1)
    url = f"postgresql+psycopg://postgres@127.0.0.1:{silent_tcp}/test"
    started = time.monotonic()
    with pytest.raises(StorageError) as refused:
        open_context(Config(url, tmp_path / "secret.key"))
    waited = time.monotonic() - started
    message = str(refused.value)
    assert message.startswith("Cannot reach the database server:"), message
    assert "timeout" in message and "\n" not in message, message
    assert waited < 10, f"gave up after {waited:.1f} s"
    # A URL that sets its own timeout keeps it.
    own = db.make_engine(url + "?connect_timeout=3")
    assert own.dialect.create_connect_args(own.url)[1]["connect_timeout"] == "3"
    # So does libpq's own variable: no value is passed over it (else this would wait 60 s).
    monkeypatch.setattr(db, "POSTGRES_CONNECT_TIMEOUT_SECONDS", 60)
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "2")
    started = time.monotonic()
    with pytest.raises(StorageError, match="timeout"):
        open_context(Config(url, tmp_path / "secret.key"))
    assert time.monotonic() - started < 10
    print(f"\nA silent PostgreSQL server: given up on after {waited:.1f} s (timeout 1 s)")


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    with private_cluster() as started:
        yield started


def test_a_server_restart_mid_session_is_one_sentence_then_works_again(
    cluster: PrivateCluster,
    tmp_path: Path,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv(SECRET_KEY_ENV_VAR, raising=False)
    config = Config(cluster.url, tmp_path / "secret.key")
    ctx = open_context(config, clock)
    actor = Actor.cli()
    users = UserService(ctx)
    cli = Cli(cluster.url, config.key_file, monkeypatch, capsys)
    try:
        users.create(actor, "alice")
        assert users.get("alice").username == "alice"  # the pool now holds a live connection

        cluster.stop()
        try:
            for call in (lambda: users.create(actor, "bob"), lambda: users.get("alice")):
                with pytest.raises(StorageError) as refused:
                    call()
                message = str(refused.value)
                assert message.startswith("Cannot reach the database server"), message
                assert "\n" not in message and "Traceback" not in message
            assert_one_error_line(cli("users", "add", "carol"), 3, "Cannot reach the database")
        finally:
            cluster.start()

        # Back, and the same context works without being reopened; nothing was half-saved.
        assert users.get("alice").username == "alice"
        assert [u.username for u in users.list()] == ["alice"]
        users.create(actor, "bob")
        assert [u.username for u in users.list()] == ["alice", "bob"]
        with ctx.db.read() as session:
            assert ctx.audit.verify(session).ok
    finally:
        ctx.close()
