"""Running the CLI: in-process for speed (``cli``), as a real process where the terminal matters.

``cli(*args, stdin=...)`` calls ``mfa_tui.cli.main`` with ``--db`` and ``--key-file`` for a fresh
database (SQLite and PostgreSQL, from ``db_url``) and returns the exit code and what was printed.
``process(*args, ...)`` runs ``python -m mfa_tui`` the same way, to prove what a person would see.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyotp
import pytest
from argon2 import PasswordHasher

from mfa_tui.cli import main
from mfa_tui.core import passwords
from mfa_tui.core.access import Actor
from mfa_tui.core.clock import Clock, FixedClock
from mfa_tui.core.config import Config
from mfa_tui.core.context import Context, open_context
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.users import UserService

ADMIN_PASSWORD = "Correct-Horse-Battery-9"
# Earlier than any real "now": setup done at this time never uses up a time-step the CLI will check.
SETUP_TIME = datetime(2020, 1, 1, 12, 0, 0, tzinfo=UTC)
ENV_VARS = ("MFA_TUI_DATABASE_URL", "MFA_TUI_KEY_FILE", "MFA_TUI_SECRET_KEY")


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.strip().splitlines()

    @property
    def json(self) -> Any:
        return json.loads(self.out)


def assert_one_error_line(result: Result, code: int, *fragments: str) -> str:
    """A failure: the exit code, exactly one line on stderr, no traceback; returns the line."""
    assert result.code == code, result
    assert len(result.err_lines) == 1, result
    assert "Traceback" not in result.err, result
    line = result.err_lines[0]
    assert line.startswith("mfa-tui: "), result
    for fragment in fragments:
        assert fragment in line, result
    return line


Stdin = str | Callable[[str], str]


class _Answering(io.StringIO):
    """Standard input that answers what the command has printed so far (e.g. a code for a QR)."""

    def __init__(
        self,
        answer: Callable[[str], str],
        capsys: pytest.CaptureFixture[str],
        printed: list[tuple[str, str]],
    ) -> None:
        super().__init__()
        self._answer = answer
        self._capsys = capsys
        self._printed = printed

    def readline(self, size: int | None = -1) -> str:
        out, err = self._capsys.readouterr()
        self._printed.append((out, err))
        return self._answer("".join(o for o, _ in self._printed))


class Cli:
    def __init__(
        self,
        db_url: str,
        key_file: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        self.db_url = db_url
        self.key_file = key_file
        self._monkeypatch = monkeypatch
        self._capsys = capsys

    def __call__(
        self, *args: str, stdin: Stdin = "", db: str | None = None, key_file: Path | None = None
    ) -> Result:
        argv = ["--db", db or self.db_url, "--key-file", str(key_file or self.key_file), *args]
        return self.raw(argv, stdin=stdin)

    def raw(self, argv: list[str], *, stdin: Stdin = "") -> Result:
        """``main(argv)`` exactly as given (no --db / --key-file added).

        ``stdin`` is the text on standard input, or a function that is called when the command
        reads a line, with what the command printed on stdout so far, and returns the line.
        """
        printed: list[tuple[str, str]] = []
        if callable(stdin):
            self._monkeypatch.setattr(sys, "stdin", _Answering(stdin, self._capsys, printed))
        else:
            self._monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        self._capsys.readouterr()
        try:
            main(argv)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        else:  # pragma: no cover - main always exits
            raise AssertionError("mfa_tui.cli.main returned instead of exiting")
        printed.append(self._capsys.readouterr())
        return Result(code, "".join(out for out, _ in printed), "".join(err for _, err in printed))

    def ok(self, *args: str, stdin: Stdin = "") -> Result:
        result = self(*args, stdin=stdin)
        assert result.code == 0, result
        return result

    def users(self) -> dict[str, dict[str, Any]]:
        """``users list --json`` keyed by username."""
        return {row["username"]: row for row in self.ok("users", "list", "--json").json}

    def init(self, admin: str = "root") -> None:
        self.ok("init", "--admin", admin, "--password-stdin", stdin=ADMIN_PASSWORD + "\n")

    def config(self) -> Config:
        return Config(database_url=self.db_url, key_file=self.key_file)

    def context(self, clock: Clock | None = None) -> Context:
        """The same database and key, for setup and checks through the services."""
        return open_context(self.config(), clock or FixedClock(SETUP_TIME))


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Still argon2id, with the smallest cost: these tests are about the CLI, not the hash's cost."""
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(passwords, "hasher", lambda: cheap)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """No database or key from the developer's environment or home folder leaks into a test."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    return {k: v for k, v in os.environ.items() if k not in ENV_VARS}


@pytest.fixture
def cli(
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    clean_env: dict[str, str],
) -> Cli:
    return Cli(db_url, tmp_path / "secret.key", monkeypatch, capsys)


@pytest.fixture
def sqlite_cli(
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    clean_env: dict[str, str],
) -> Cli:
    """For checks that do not depend on the database engine (parsing, validation, help)."""
    return Cli(sqlite_url, tmp_path / "secret.key", monkeypatch, capsys)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A migrated SQLite database with the administrator ``root``, and its key, made once."""
    folder = tmp_path_factory.mktemp("template")
    database, key_file = folder / "mfa.db", folder / "secret.key"
    context = open_context(Config(f"sqlite:///{database}", key_file))
    try:
        UserService(context).create(Actor.cli(), "root", role="admin", password=ADMIN_PASSWORD)
    finally:
        context.close()
    assert not Path(f"{database}-wal").exists(), "the template must be one self-contained file"
    return database, key_file


def _make_ready(cli: Cli, template: tuple[Path, Path]) -> Cli:
    """What ``init --admin root`` does (tested on its own); on SQLite, a copy of the template."""
    if cli.db_url.startswith("sqlite:///"):
        shutil.copyfile(template[0], cli.db_url.removeprefix("sqlite:///"))
        shutil.copyfile(template[1], cli.key_file)
        cli.key_file.chmod(0o600)
    else:
        cli.init()
    return cli


@pytest.fixture
def sqlite_ready(sqlite_cli: Cli, sqlite_template: tuple[Path, Path]) -> Cli:
    return _make_ready(sqlite_cli, sqlite_template)


@pytest.fixture
def ready(cli: Cli, sqlite_template: tuple[Path, Path]) -> Cli:
    """A database with one administrator, ``root``."""
    return _make_ready(cli, sqlite_template)


@dataclass
class Process:
    db_url: str
    key_file: Path
    env: dict[str, str]

    def argv(self, *args: str, db: str | None = None, key_file: Path | None = None) -> list[str]:
        return [
            sys.executable,
            "-m",
            "mfa_tui",
            "--db",
            db or self.db_url,
            "--key-file",
            str(key_file or self.key_file),
            *args,
        ]

    def __call__(
        self, *args: str, stdin: str = "", db: str | None = None, key_file: Path | None = None
    ) -> Result:
        completed = subprocess.run(
            self.argv(*args, db=db, key_file=key_file),
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
        )
        return Result(completed.returncode, completed.stdout, completed.stderr)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )


@pytest.fixture
def process(cli: Cli, clean_env: dict[str, str]) -> Process:
    """``python -m mfa_tui`` on the same database and key as ``cli``."""
    return Process(cli.db_url, cli.key_file, clean_env)


@pytest.fixture
def sqlite_process(sqlite_cli: Cli, clean_env: dict[str, str]) -> Process:
    return Process(sqlite_cli.db_url, sqlite_cli.key_file, clean_env)


# TOTP helpers ------------------------------------------------------------------------------------


def configure_totp(cli: Cli, username: str) -> str:
    """Give ``username`` a configured authenticator through the services; returns its secret."""
    clock = FixedClock(SETUP_TIME)
    context = cli.context(clock)
    try:
        service = MfaService(context)
        actor = Actor.cli()
        start = service.begin_enrollment(actor, username, "totp")
        assert start.provisioning_uri is not None
        secret = pyotp.parse_uri(start.provisioning_uri).secret
        assert service.confirm_code(actor, start.credential_id, pyotp.TOTP(secret).at(clock.now()))
        service.activate(actor, username, start.credential_id)
    finally:
        context.close()
    return secret


def generate_backup_codes(cli: Cli, username: str) -> list[str]:
    context = cli.context()
    try:
        return MfaService(context).generate_backup_codes(Actor.cli(), username)
    finally:
        context.close()


def verify_with_current_code(cli: Cli, username: str, secret: str, *args: str) -> Result:
    """``verify`` with the code for the real current time (the CLI reads the system clock).

    Retried once if a 30-second boundary passed between computing and checking the code.
    """
    totp = pyotp.TOTP(secret)
    for _ in range(2):
        step = int(time.time()) // 30
        result = cli("verify", username, *args, stdin=totp.at(step * 30) + "\n")
        if result.code == 0 or int(time.time()) // 30 == step:
            return result
    return result


def wrong_code(secret: str) -> str:
    """Six digits that are not the code for any time-step near now."""
    totp = pyotp.TOTP(secret)
    now = int(time.time())
    near = {totp.at(now + offset * 30) for offset in range(-3, 4)}
    candidate = 123456
    while f"{candidate:06d}" in near:
        candidate += 1
    return f"{candidate:06d}"
