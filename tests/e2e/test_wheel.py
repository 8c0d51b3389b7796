"""The built wheel carries the Alembic migrations and the styles, and the installed copy finds them.

A source checkout can hide packaging mistakes (``styles/`` and the migrations are on disk next to
the code), so this test builds the wheel, installs it into a bare folder and runs it from
somewhere else, where only the installed files exist.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import zipfile
from contextlib import closing
from pathlib import Path

import pytest

from mfa_tui.core.schema import head_revision

PROJECT = Path(__file__).resolve().parents[2]


def _run(
    args: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: int = 120
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, (
        f"{' '.join(args)} exited {result.returncode}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(outdir)], cwd=PROJECT)
    (built,) = outdir.glob("mfa_tui-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--no-compile",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(wheel),
        ],
        cwd=target,
    )
    return target


def _installed_env(target: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MFA_TUI_")}
    env["PYTHONPATH"] = str(target)
    env["PYTHONNOUSERSITE"] = "1"
    return env


@pytest.mark.slow
def test_wheel_contains_migrations_and_styles(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    versions = [
        n for n in names if n.startswith("mfa_tui/migrations/versions/") and n.endswith(".py")
    ]
    assert "mfa_tui/migrations/versions/0001_initial_schema.py" in versions
    assert "mfa_tui/migrations/env.py" in names
    assert "mfa_tui/migrations/script.py.mako" in names
    assert "mfa_tui/styles/app.tcss" in names
    # Every style file of the checkout is shipped, not only the one named above.
    for tcss in (PROJECT / "styles").glob("*.tcss"):
        assert f"mfa_tui/styles/{tcss.name}" in names
    assert not [n for n in names if n.startswith("tests/")], "tests leaked into the wheel"


@pytest.mark.slow
def test_installed_wheel_upgrades_a_database_and_loads_its_stylesheet(
    installed: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _installed_env(installed)

    where = _run(
        [sys.executable, "-c", "import mfa_tui; print(mfa_tui.__file__)"], cwd=elsewhere, env=env
    )
    assert Path(where.stdout.strip()).is_relative_to(installed), where.stdout

    database = tmp_path / "x.db"
    upgraded = _run(
        [
            sys.executable,
            "-m",
            "mfa_tui",
            "--db",
            f"sqlite:///{database}",
            "--key-file",
            str(tmp_path / "k"),
            "db",
            "upgrade",
        ],
        cwd=elsewhere,
        env=env,
    )
    head = head_revision()
    assert head in upgraded.stdout, upgraded.stdout
    with closing(sqlite3.connect(database)) as connection:
        (version,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert version == head
    assert {"users", "mfa_credentials", "audit_events", "key_checks"} <= tables
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600

    # The theme's variables ($surface, $error, ...) come from an App, as they do at run time.
    check_stylesheet = (
        "from textual.app import App\n"
        "from textual.css.stylesheet import Stylesheet\n"
        "from mfa_tui.ui.resources import stylesheet\n"
        "p = stylesheet()\n"
        f"assert p.is_file() and {str(installed)!r} in str(p), p\n"
        "sheet = Stylesheet(variables=App().get_css_variables())\n"
        "sheet.read(p)\n"
        "sheet.parse()\n"
        "assert sheet.rules, 'no rules parsed'\n"
        "print(p)\n"
    )
    shown = _run([sys.executable, "-c", check_stylesheet], cwd=elsewhere, env=env)
    assert shown.stdout.strip() == str(installed / "mfa_tui" / "styles" / "app.tcss")
