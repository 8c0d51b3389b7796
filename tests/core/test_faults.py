"""Storage faults on SQLite, through the real CLI: one clear line and exit 3, nothing half-saved,
and the same command working once the fault is gone.

The read-only and disk-full cases mount a file system (a read-only bind mount, an 8 MiB tmpfs),
which needs root; without it they skip with the reason. Root ignores file permissions, which is
why a mount is used rather than ``chmod``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mfa_tui.core import db
from mfa_tui.core.config import SECRET_KEY_ENV_VAR
from tests.cli.conftest import Cli, assert_one_error_line

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="mounting a read-only or a tiny file system needs root"
)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    monkeypatch.delenv(SECRET_KEY_ENV_VAR, raising=False)
    return Cli(
        f"sqlite:///{tmp_path / 'data' / 'mfa.db'}", tmp_path / "secret.key", monkeypatch, capsys
    )


def usernames(cli: Cli, db_url: str | None = None) -> list[str]:
    listed = cli("users", "list", "--json", db=db_url)
    assert listed.code == 0, listed
    return [row["username"] for row in listed.json]


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


@pytest.fixture
def mounts() -> Iterator[list[Path]]:
    """Mount points to unmount at the end, whatever happened."""
    points: list[Path] = []
    yield points
    for point in reversed(points):
        subprocess.run(["umount", "-l", str(point)], check=False, capture_output=True)


def test_a_database_folder_that_cannot_be_created(cli: Cli, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the database's folder should be\n")
    url = f"sqlite:///{blocker / 'mfa.db'}"
    assert_one_error_line(cli("users", "add", "bob", db=url), 3, "Cannot create the folder")
    blocker.unlink()  # the fault is gone: the same command works
    assert cli("users", "add", "bob", db=url).code == 0
    assert usernames(cli, url) == ["bob"]


@needs_root
def test_a_read_only_database(cli: Cli, tmp_path: Path, mounts: list[Path]) -> None:
    cli.ok("users", "add", "alice")
    data = tmp_path / "data"
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    _mount("--bind", str(data), str(read_only))
    mounts.append(read_only)
    _mount("-o", "remount,bind,ro", str(read_only))
    url = f"sqlite:///{read_only / 'mfa.db'}"

    line = assert_one_error_line(cli("users", "add", "bob", db=url), 3)
    assert "read-only" in line or "Cannot open the database" in line, line
    assert usernames(cli) == ["alice"]  # nothing half-saved
    _mount("-o", "remount,bind,rw", str(read_only))
    assert cli("users", "add", "bob", db=url).code == 0
    assert usernames(cli) == ["alice", "bob"]


def test_a_database_locked_by_another_process(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.ok("users", "add", "alice")
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 300)  # the real 10 s, shortened for the test
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys\n"
            f"c = sqlite3.connect({str(tmp_path / 'data' / 'mfa.db')!r}, isolation_level=None)\n"
            "c.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        assert_one_error_line(cli("users", "add", "bob"), 3, "busy")
    finally:
        holder.communicate("", timeout=30)  # the other process ends its transaction
    assert usernames(cli) == ["alice"]
    assert cli("users", "add", "bob").code == 0
    assert usernames(cli) == ["alice", "bob"]


def fill_up(folder: Path) -> Path:
    """Fill the file system of ``folder`` with one file (returned: unlink it to make room)."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while out.write(b"\0" * 65536):
                pass
        except OSError:
            pass  # ENOSPC: the disk is full
    return filler


@needs_root
def test_a_full_disk(cli: Cli, tmp_path: Path, mounts: list[Path]) -> None:
    small = tmp_path / "small"
    small.mkdir()
    _mount("-t", "tmpfs", "-o", "size=8m", "tmpfs", str(small))
    mounts.append(small)
    url = f"sqlite:///{small / 'mfa.db'}"
    assert cli("users", "add", "alice", db=url).code == 0
    filler = fill_up(small)

    line = assert_one_error_line(cli("users", "add", "bob", db=url), 3)
    assert "full" in line, line
    filler.unlink()
    assert usernames(cli, url) == ["alice"]  # nothing half-saved
    assert cli("users", "add", "bob", db=url).code == 0
    assert usernames(cli, url) == ["alice", "bob"]
