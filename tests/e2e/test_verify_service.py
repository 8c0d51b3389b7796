"""The verify service as it runs on a server: ``mfa-tui verify-service`` as a real process on a
temporary socket, asked by real ``mfa-tui verify --pam`` client processes (the installed script).

Service and clients share one config file (``MFA_TUI_CONFIG``: database, key, ``verify_socket``),
as on a server they share /etc/mfa-tui/config.toml. Clients run under ``python -X importtime``: a
client that never imported SQLAlchemy, SQLModel, typer or Textual cannot have answered in process,
so it was the service. Codes are computed at the real time (both processes use the real clock).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest

from mfa_tui.verify_protocol import REFUSED, REFUSED_NO_FACTOR
from tests.cli import conftest as cli_fixtures
from tests.cli.conftest import Cli, configure_totp, wrong_code

pytestmark = pytest.mark.slow

MFA_TUI = Path(sys.executable).parent / "mfa-tui"
HEAVY = ("sqlalchemy", "sqlmodel", "typer", "textual")
PAM_ENV = {"PAM_SERVICE": "sshd", "PAM_RHOST": "203.0.113.9", "PAM_TYPE": "auth"}
ACTOR = "pam:sshd@203.0.113.9"

clean_env = cli_fixtures.clean_env
sqlite_cli = cli_fixtures.sqlite_cli
sqlite_template = cli_fixtures.sqlite_template
sqlite_ready = cli_fixtures.sqlite_ready
cli = cli_fixtures.cli
ready = cli_fixtures.ready


@dataclass
class Answer:
    code: int
    lines: list[str]  # stderr without the import-time report
    heavy: list[str]  # heavy modules the client imported

    @property
    def via_service(self) -> bool:
        return not self.heavy


class Installation:
    """A config file naming the test's database, key and socket, and the processes using it."""

    def __init__(self, cli: Cli, env: dict[str, str], folder: Path) -> None:
        self.cli = cli
        self.folder = folder
        self.socket = folder / "run" / "verify.sock"
        self.config = folder / "config.toml"
        self.config.write_text(
            f'database_url = "{cli.db_url}"\nkey_file = "{cli.key_file}"\n'
            f'verify_socket = "{self.socket}"\n'
        )
        self.env = {**env, "MFA_TUI_CONFIG": str(self.config)}
        self.service: subprocess.Popen[str] | None = None

    def start(self, *args: str) -> subprocess.Popen[str]:
        self.service = subprocess.Popen(
            [str(MFA_TUI), "verify-service", *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        while not self.socket.is_socket():
            if self.service.poll() is not None or time.monotonic() > deadline:
                self.service.kill()
                raise AssertionError(f"the service did not start: {self.service.communicate()[0]}")
            time.sleep(0.05)
        return self.service

    def stop(self, signal_number: int = signal.SIGTERM) -> int:
        assert self.service is not None
        self.service.send_signal(signal_number)
        return self.service.wait(timeout=30)

    def log(self) -> str:
        assert self.service is not None and self.service.stdout is not None
        return self.service.stdout.read()

    def verify(
        self, code: str, *, user: str | None = None, pam_user: str = "", args: tuple[str, ...] = ()
    ) -> Answer:
        """``verify --pam --require`` for ``pam_user`` (or ``verify USER`` with ``user``)."""
        command = [str(MFA_TUI), "verify", *(["--pam", "--require"] if user is None else [user])]
        env = {**self.env, **PAM_ENV, "PAM_USER": pam_user}
        done = subprocess.run(
            [*args, sys.executable, "-X", "importtime", *command],
            input=code + ("\0" if user is None else "\n"),
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        lines = done.stderr.splitlines()
        imported = {line.rsplit("|", 1)[-1].strip() for line in lines if line.startswith("import")}
        heavy = sorted(name for name in imported if name.split(".")[0] in HEAVY)
        messages = [line for line in lines if not line.startswith("import time:")]
        return Answer(done.returncode, messages, heavy)

    def audit(self) -> list[tuple[str, str, str]]:
        events = self.cli.ok("audit", "list", "--json", "--search", "verify.").json
        return [(e["action"], e["actor"], e["target"]) for e in reversed(events)]


@contextmanager
def _installation(cli: Cli, env: dict[str, str]) -> Iterator[Installation]:
    if not MFA_TUI.exists():
        pytest.skip(f"no installed mfa-tui script next to {sys.executable}")
    # Short (a socket path has at most 107 bytes) and open to other accounts (the peer test).
    folder = Path(tempfile.mkdtemp(prefix="mfa-vs-"))
    folder.chmod(0o755)
    (folder / "run").mkdir(mode=0o755)
    setup = Installation(cli, env, folder)
    try:
        yield setup
    finally:
        if setup.service is not None and setup.service.poll() is None:
            setup.service.kill()
            setup.service.wait()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def installation(sqlite_ready: Cli, clean_env: dict[str, str]) -> Iterator[Installation]:
    with _installation(sqlite_ready, clean_env) as setup:
        yield setup


@pytest.fixture
def installation_on_any_db(ready: Cli, clean_env: dict[str, str]) -> Iterator[Installation]:
    """On SQLite and on PostgreSQL."""
    with _installation(ready, clean_env) as setup:
        yield setup


def test_codes_are_checked_by_the_service_with_policy_replay_and_audit(
    installation_on_any_db: Installation, ready: Cli
) -> None:
    installation = installation_on_any_db
    ready.ok("users", "add", "alice")
    ready.ok("users", "add", "carol")  # no second factor
    secret = configure_totp(ready, "alice")
    installation.start()
    code = pyotp.TOTP(secret).now()

    accepted = installation.verify(code, pam_user="alice")
    assert (accepted.code, accepted.lines) == (0, ["Code accepted."]), accepted
    assert accepted.via_service, accepted.heavy

    replay = installation.verify(code, pam_user="alice")
    assert (replay.code, replay.lines) == (1, [f"mfa-tui: {REFUSED}"]), replay
    wrong = installation.verify(wrong_code(secret), pam_user="alice")
    assert (wrong.code, wrong.lines) == (1, [f"mfa-tui: {REFUSED}"]), wrong
    unknown = installation.verify("123456", pam_user="nobody-here")
    assert (unknown.code, unknown.lines) == (1, [f"mfa-tui: {REFUSED}"]), unknown
    # --require refuses a user without a factor; plain verify NAME lets her through and says why.
    required = installation.verify("123456", pam_user="carol")
    assert (required.code, required.lines) == (1, [f"mfa-tui: {REFUSED_NO_FACTOR}"]), required
    optional = installation.verify("123456", user="carol")
    assert optional.code == 0 and optional.via_service, optional
    assert optional.lines == [
        "No second factor is required for this user under the current policy."
    ]
    missing = installation.verify("", pam_user="")
    assert missing.code == 2 and missing.via_service, missing
    assert missing.lines[0].startswith("mfa-tui: PAM_USER is not set")

    assert installation.audit() == [
        ("verify.accepted", ACTOR, "alice"),
        ("verify.refused", ACTOR, "alice"),
        ("verify.refused", ACTOR, "alice"),
    ]
    assert installation.stop() == 0
    assert not installation.socket.exists()


def test_lockout_applies_through_the_service(installation: Installation, sqlite_ready: Cli) -> None:
    sqlite_ready.ok("users", "add", "bob")
    secret = configure_totp(sqlite_ready, "bob")
    sqlite_ready.ok("settings", "set", "lockout.attempts", "2")
    installation.start()

    for _ in range(2):
        assert installation.verify(wrong_code(secret), pam_user="bob").code == 1
    locked = installation.verify(pyotp.TOTP(secret).now(), pam_user="bob")

    assert locked.code == 1 and locked.via_service, locked
    assert sqlite_ready.users()["bob"]["locked"] is True
    [last] = sqlite_ready.ok("audit", "list", "--json", "--limit", "1").json
    assert (last["action"], last["actor"], last["details"]) == (
        "verify.refused",
        ACTOR,
        {"reason": "locked"},
    )


def test_logins_go_on_through_a_key_rotation_without_a_restart(
    installation_on_any_db: Installation, ready: Cli
) -> None:
    """``keys rotate`` replaces the key file under the running service: its next answer opens
    the database again with the new key instead of failing every login until a restart."""
    installation = installation_on_any_db
    ready.ok("users", "add", "dora")
    secret = configure_totp(ready, "dora")
    installation.start()
    totp = pyotp.TOTP(secret)
    before = installation.verify(totp.now(), pam_user="dora")
    assert (before.code, before.via_service) == (0, True), before

    old_key = installation.cli.key_file.read_bytes()
    ready.ok("keys", "rotate")
    assert installation.cli.key_file.read_bytes() != old_key

    after = installation.verify(totp.at(time.time() + 30), pam_user="dora")  # the next step
    assert (after.code, after.lines, after.via_service) == (0, ["Code accepted."], True), after
    assert installation.stop() == 0
    log = installation.log()
    assert log.count("opened the database with the new key") == 1, log


def _ask_raw(path: Path, data: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(30)
        connection.connect(str(path))
        # The service stops reading an oversized request: the answer is what counts.
        with suppress(BrokenPipeError):
            connection.sendall(data)
        return connection.makefile("rb").readline()


def test_bad_requests_get_a_refusal_and_the_service_carries_on(
    installation: Installation, sqlite_ready: Cli
) -> None:
    sqlite_ready.ok("users", "add", "alice")
    secret = configure_totp(sqlite_ready, "alice")
    installation.start()
    # A client that connects and says nothing holds one thread, not the service.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.connect(str(installation.socket))

        assert b'"exit": 2' in _ask_raw(installation.socket, b"not json\n")
        oversized = _ask_raw(installation.socket, b'{"user": "' + b"a" * 10_000)
        assert b"longer than 4096 bytes" in oversized, oversized
        assert b"unknown field" in _ask_raw(installation.socket, b'{"user": "a", "x": 1}\n')
        assert b"'code' must be" in _ask_raw(
            installation.socket, b'{"user": "alice", "code": 5, "actor": "a"}\n'
        )
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as gone:
            gone.connect(str(installation.socket))  # and leaves at once

        accepted = installation.verify(pyotp.TOTP(secret).now(), pam_user="alice")

    assert accepted.code == 0 and accepted.via_service, accepted
    assert installation.service is not None and installation.service.poll() is None
    assert installation.stop() == 0
    log = installation.log()
    assert "refused a bad request" in log and "Traceback" not in log, log


def test_a_client_running_as_another_account_is_refused(installation: Installation) -> None:
    if os.geteuid() != 0:
        pytest.skip("running a client as another account (setpriv) needs root")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed (util-linux)")
    installation.config.chmod(0o644)
    installation.start()

    # Group root lets it through the socket's mode 0660: only the peer check stands in the way.
    other = installation.verify(
        "123456",
        pam_user="alice",
        args=("setpriv", "--reuid=nobody", "--regid=0", "--clear-groups", "--"),
    )

    assert other.code == 1 and other.via_service, other
    assert other.lines == [
        "mfa-tui: Refused: the verify service answers only root and its own account, not uid "
        f"{_uid('nobody')}."
    ]
    assert installation.audit() == []


def _uid(name: str) -> int:
    import pwd

    return pwd.getpwnam(name).pw_uid


def test_without_a_service_the_client_answers_in_process_the_same(
    installation: Installation, sqlite_ready: Cli
) -> None:
    sqlite_ready.ok("users", "add", "alice")
    secret = configure_totp(sqlite_ready, "alice")
    installation.start()
    code = pyotp.TOTP(secret).now()
    assert installation.verify(code, pam_user="alice").via_service

    installation.stop(signal.SIGKILL)  # the socket file stays, with nobody behind it
    assert installation.socket.is_socket()
    replay = installation.verify(code, pam_user="alice")
    unknown = installation.verify("123456", pam_user="nobody-here")

    assert not replay.via_service and not unknown.via_service
    assert (replay.code, replay.lines) == (1, [f"mfa-tui: {REFUSED}"]), replay
    assert (unknown.code, unknown.lines) == (1, [f"mfa-tui: {REFUSED}"]), unknown
    assert [action for action, _, _ in installation.audit()] == [
        "verify.accepted",
        "verify.refused",
    ]
