"""A private PostgreSQL cluster for tests that stop and start the server.

Made with ``initdb`` in a temporary folder, listening on a free loopback port, run as the
``postgres`` OS user (the server refuses to run as root). The machine's shared server is never
touched: only this cluster's ``pg_ctl`` is ever told to stop.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.ports import free_port

OS_USER = "postgres"


@dataclass
class PrivateCluster:
    bin_dir: Path
    data_dir: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{OS_USER}@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        command = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-w", *args]
        subprocess.run(_as_postgres(command), check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir}"
        self._pg_ctl("-o", options, "-l", str(self.data_dir / "server.log"), "start")

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "stop")


def _as_postgres(command: list[str]) -> list[str]:
    return command if os.geteuid() != 0 else ["runuser", "-u", OS_USER, "--", *command]


@contextmanager
def private_cluster() -> Iterator[PrivateCluster]:
    """A started cluster (skips with the reason when one cannot be made), removed afterwards."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.skip("no initdb under /usr/lib/postgresql: cannot make a private cluster")
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam(OS_USER)
        except KeyError:
            pytest.skip(f"running as root without a '{OS_USER}' OS user to run the server")
    bin_dir = Path(found[-1]).parent
    folder = Path(tempfile.mkdtemp(prefix="mfa-tui-pg-"))
    data_dir = folder / "data"
    if os.geteuid() == 0:
        os.chown(folder, account.pw_uid, account.pw_gid)
    cluster = PrivateCluster(bin_dir, data_dir, free_port())
    try:
        subprocess.run(
            _as_postgres(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data_dir),
                    "-U",
                    OS_USER,
                    "-A",
                    "trust",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        cluster.start()
        yield cluster
    finally:
        subprocess.run(
            _as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", "immediate", "stop"]),
            check=False,
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(folder, ignore_errors=True)
