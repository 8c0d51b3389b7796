"""Terminal escape sequences in user-supplied text never reach the terminal raw.

The forms refuse control characters, but a database is also written by imports, other tools and
older versions, and audit details carry free text (an override reason, a typed username). So a
display name, an email and audit details holding an OSC title change, a colour change and a C1
CSI are written straight into the database here; the users screen, the Logs screen and the
``users list`` / ``audit list`` commands must all show them escaped (``\\x1b``), never raw.
Escaping does not depend on the database engine: SQLite only.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from mfa_tui.core.access import Actor
from mfa_tui.core.audit import AuditEntry
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.config import SECRET_KEY_ENV_VAR
from mfa_tui.core.context import Context
from mfa_tui.core.errors import InputError
from mfa_tui.core.models import User
from mfa_tui.core.services.users import UserService, UserView
from mfa_tui.core.text import printable
from tests.cli.conftest import Cli
from tests.helpers.qr_decode import screen_text
from tests.ui.conftest import add_user, admin_console, on_screen, wait_until

HOSTILE_NAME = "Eve\x1b]0;pwned\x07\x1b[31m"
HOSTILE_EMAIL = "eve\x9b2J@example.com"
HOSTILE_REASON = "caller said\x1b[2J\x1b]8;;http://evil\x07"
RAW = ("\x1b", "\x07", "\x9b")


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def hostile(ctx: Context, clock: FixedClock) -> None:
    add_user(ctx, "eve")
    with ctx.db.write() as session:
        session.execute(
            update(User)
            .where(User.username == "eve")
            .values(display_name=HOSTILE_NAME, email=HOSTILE_EMAIL)
        )
        ctx.audit.append(
            session,
            AuditEntry("cli:root", "mfa.reset", "eve", {"reason": HOSTILE_REASON}),
            clock.now(),
        )


def test_the_forms_refuse_control_characters_in_the_first_place(ctx: Context) -> None:
    with pytest.raises(InputError, match="control characters"):
        UserService(ctx).create(Actor.cli(), "mallory", display_name=HOSTILE_NAME)


def assert_escaped(lines: list[str], *expected: str) -> None:
    text = "\n".join(lines)
    for raw in RAW:
        assert raw not in text, f"raw {raw!r} on screen"
    for fragment in expected:
        assert fragment in text, f"{fragment!r} not on screen:\n{text}"


async def test_users_and_logs_screens_show_escapes_escaped(
    ctx: Context, clock: FixedClock, admin: UserView, hostile: None
) -> None:
    async with admin_console(ctx, clock, size=(160, 32)) as pilot:
        await wait_until(pilot, lambda: "eve" in "\n".join(screen_text(pilot.app)), "eve's row")
        assert_escaped(screen_text(pilot.app), "Eve\\x1b]0;pwned\\x07", "eve\\x9b2J@")
        await pilot.press("l")
        await on_screen(pilot, "AuditLogScreen")
        await wait_until(
            pilot, lambda: "mfa.reset" in "\n".join(screen_text(pilot.app)), "the events"
        )
        # Details keep JSON's shape; their text is escaped like everything else, once.
        assert_escaped(screen_text(pilot.app), '"caller said\\x1b[2J\\x1b]8;;http://evil\\x07"')


def test_users_list_and_audit_list_print_escapes_escaped(
    ctx: Context,
    hostile: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv(SECRET_KEY_ENV_VAR, raising=False)
    cli = Cli(ctx.db.engine.url.render_as_string(), tmp_path / "secret.key", monkeypatch, capsys)
    outputs = [
        cli.ok("users", "list").out,
        cli.ok("users", "list", "--search", "eve").out,
        cli.ok("audit", "list").out,
        cli.ok("audit", "list", "--csv").out,
    ]
    for out in outputs:
        assert not any(raw in out for raw in RAW), out
    assert printable(HOSTILE_NAME) in outputs[0]
    assert '"reason": "caller said\\x1b[2J\\x1b]8;;http://evil\\x07"' in outputs[2]
    # JSON is for programs: the exact value survives, encoded by JSON (no raw byte either).
    listed = {row["username"]: row for row in cli.ok("users", "list", "--json").json}
    assert listed["eve"]["display_name"] == HOSTILE_NAME
