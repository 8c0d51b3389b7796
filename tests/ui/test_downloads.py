"""Downloads in a terminal: "d" on Logs and on the backup codes saves a file through
``App.deliver_text`` into the Downloads folder (here a temporary HOME's), readable by its owner
only and never over an earlier file. In a browser tab the same key downloads it instead
(tests/e2e/test_serve.py).
"""

from __future__ import annotations

import io
import re
import stat
from pathlib import Path

import pytest

from mfa_tui.core.audit import list_events, write_csv
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.services.users import UserView
from mfa_tui.ui.screens.backup_codes import BackupCodesScreen
from tests.ui.conftest import (
    ADMIN,
    add_user,
    admin_console,
    click,
    notifications,
    on_screen,
    wait_until,
)

CODES = ["1111-2222", "3333-4444", "5555-6666"]


@pytest.fixture
def downloads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The Downloads folder, in a HOME of the test's own (not made yet: the app makes it)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / ".config"))  # no user-dirs.dirs there
    return tmp_path / "Downloads"


def saved_files(folder: Path) -> list[Path]:
    """Oldest first: ``name.txt`` before ``name-2.txt``."""
    return (
        sorted(folder.iterdir(), key=lambda path: (len(path.name), path.name))
        if folder.exists()
        else []
    )


def private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_logs_download_the_filtered_audit_log_as_the_cli_csv(
    ctx: Context, clock: FixedClock, admin: UserView, downloads: Path
) -> None:
    add_user(ctx, "alice")
    add_user(ctx, "bob")
    async with admin_console(ctx, clock) as pilot:
        await pilot.press("l")
        await on_screen(pilot, "AuditLogScreen")
        await pilot.press("slash", *"bob", "enter")
        await pilot.press("d")
        await wait_until(pilot, lambda: any("Saved" in n for n in notifications(pilot)), "saved")
        [saved] = saved_files(downloads)
        assert re.fullmatch(r"mfa-tui-audit-log-\d{8}-\d{6}\.csv", saved.name)
        assert notifications(pilot)[-1] == f"Saved {saved}."
        with ctx.db.read() as session:
            expected = io.StringIO()
            write_csv(list_events(session, text="bob"), expected)
        assert saved.read_bytes().decode() == expected.getvalue()  # as `audit list --csv`
        assert "bob" in saved.read_text() and "alice" not in saved.read_text()
        assert private(saved)
    with ctx.db.read() as session:
        [export] = list_events(session, text="audit.export")
    rows = len(expected.getvalue().splitlines()) - 1
    assert (export.actor, export.details) == (ADMIN, {"events": rows, "filter": "bob"})


async def test_backup_codes_download_as_a_private_text_file_never_overwritten(
    ctx: Context, clock: FixedClock, admin: UserView, downloads: Path
) -> None:
    async with admin_console(ctx, clock) as pilot:
        pilot.app.push_screen(BackupCodesScreen(list(CODES)))
        await on_screen(pilot, "BackupCodesScreen")
        await pilot.press("d")
        await wait_until(pilot, lambda: len(saved_files(downloads)) == 1, "the first file")
        await click(pilot, "#download")  # the button does the same, into a new file
        await wait_until(
            pilot, lambda: sum("Saved" in n for n in notifications(pilot)) == 2, "the second file"
        )
        first, second = saved_files(downloads)
        assert re.fullmatch(r"mfa-tui-backup-codes-\d{8}-\d{6}\.txt", first.name)
        assert second.name == first.name.replace(".txt", "-2.txt")  # same second, new name
        for saved in (first, second):
            text = saved.read_text()
            assert text.splitlines()[0] == f"mfa-tui backup codes for {ADMIN}"
            assert [line for line in text.splitlines() if re.fullmatch(r"\d{4}-\d{4}", line)] == (
                CODES
            )
            assert private(saved)
