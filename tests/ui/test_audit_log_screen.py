"""Logs: the audit log newest first, a filter that narrows it, and "v" checking the HMAC chain
(intact, then broken once a row is edited behind the application's back)."""

from __future__ import annotations

from sqlalchemy import update
from textual.widgets import DataTable

from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.models import AuditEvent
from mfa_tui.core.services.users import UserView
from tests.ui.conftest import (
    ADMIN,
    add_user,
    admin_console,
    audit_events,
    notifications,
    on_screen,
    settle,
    wait_until,
)


def table_rows(pilot) -> list[list[str]]:  # type: ignore[no-untyped-def]
    table = pilot.app.screen.query_one("#audit-events", DataTable)
    return [[str(cell) for cell in table.get_row_at(index)] for index in range(table.row_count)]


async def test_logs_newest_first_filter_and_integrity_check(
    ctx: Context, clock: FixedClock, admin: UserView
) -> None:
    add_user(ctx, "alice")
    clock.advance(minutes=1)
    add_user(ctx, "bob")
    async with admin_console(ctx, clock) as pilot:
        await pilot.press("l")
        await on_screen(pilot, "AuditLogScreen")
        await wait_until(pilot, lambda: table_rows(pilot), "the events")
        events = audit_events(ctx)  # newest first
        rows = table_rows(pilot)
        assert [int(row[0]) for row in rows] == [event.seq for event in events]
        assert [int(row[0]) for row in rows] == sorted((int(row[0]) for row in rows), reverse=True)
        assert (rows[0][2], rows[0][3]) == (ADMIN, "login.success")  # the newest: this login
        assert [row[3] for row in rows[-3:]] == ["user.create"] * 3  # the oldest: the users

        await pilot.press("v")
        await wait_until(pilot, lambda: notifications(pilot), "the integrity check")
        assert notifications(pilot)[-1] == f"The audit chain is intact: {len(events)} events."

        await pilot.press("slash", *"bob")
        await pilot.pause(0.3)
        await wait_until(pilot, lambda: len(table_rows(pilot)) < len(rows), "the filter")
        filtered = table_rows(pilot)
        assert [int(row[0]) for row in filtered] == [
            event.seq for event in events if "bob" in (event.actor, event.target)
        ]
        assert filtered and all("bob" in (row[2], row[4]) for row in filtered)

        with ctx.db.write() as session:  # someone edits history behind the application's back
            session.execute(
                update(AuditEvent).where(AuditEvent.seq == 2).values(actor="someone-else")
            )
        pilot.app.screen.query_one("#audit-events").focus()
        await settle(pilot)
        await pilot.press("v")
        await wait_until(pilot, lambda: len(notifications(pilot)) == 2, "the second check")
        assert notifications(pilot)[-1].startswith("The audit log is broken at row 2")
