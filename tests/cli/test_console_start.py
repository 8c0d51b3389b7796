"""`mfa-tui` with only --db/--key-file/--debug opens the console without building typer's
command (it takes longer than painting the login screen); anything else goes through typer."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mfa_tui.cli import _console_options


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], (None, None)),
        (["--debug"], (None, None)),
        (["--db", "sqlite:///x.db"], ("sqlite:///x.db", None)),
        (["--db=sqlite:///x.db", "--key-file", "k"], ("sqlite:///x.db", "k")),
        (["--key-file=k", "--debug", "--db", "u"], ("u", "k")),
    ],
)
def test_console_options_are_read_directly(
    args: list[str], expected: tuple[str | None, str | None]
) -> None:
    assert _console_options(args) == expected


@pytest.mark.parametrize(
    "args",
    [
        ["users", "list"],
        ["--help"],
        ["--db"],  # typer says the value is missing
        ["--db", "--key-file", "k"],
        ["--db", "a", "--db", "b"],
        ["--verbose"],
        ["--db", "a", "verify", "alice"],
    ],
)
def test_anything_else_is_left_to_typer(args: list[str]) -> None:
    assert _console_options(args) is None


def test_a_missing_option_value_is_still_a_usage_error() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "mfa_tui", "--db"], capture_output=True, text=True, timeout=60
    )
    assert finished.returncode == 2
    assert finished.stderr.count("\n") == 1 and "--db" in finished.stderr
