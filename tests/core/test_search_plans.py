"""The users table's queries are served by indexes (SQLite query plans), so they stay fast at a million users."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import col

from mfa_tui.core.clock import FixedClock
from mfa_tui.core.config import Config
from mfa_tui.core.context import Context, open_context
from mfa_tui.core.demo import bulk_insert_users
from mfa_tui.core.models import User
from mfa_tui.core.search import SPARSE_LIMIT, search_condition
from mfa_tui.core.services.users import SORT_COLUMNS, UserPager, UserQuery, _with_lockout


@pytest.fixture
def seeded(sqlite_url: str, tmp_path: Path, clock: FixedClock) -> Iterator[Context]:
    ctx = open_context(Config(sqlite_url, tmp_path / "key"), clock)
    bulk_insert_users(ctx, 5_000)
    yield ctx
    ctx.close()


def _plan(ctx: Context, statement: object) -> str:
    sql = str(statement.compile(ctx.db.engine, compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]
    with ctx.db.engine.connect() as connection:
        return " | ".join(row[3] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))


def test_a_rare_fragment_is_answered_from_the_trigram_index(seeded: Context) -> None:
    with seeded.db.read() as session:
        plan = " | ".join(
            row[3]
            for row in session.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT rowid FROM users_search WHERE users_search MATCH :q"
                ),
                {"q": '"lovelace000"'},
            )
        )
        condition = search_condition(session, "lovelace000")
    assert "VIRTUAL TABLE INDEX" in plan
    # Found through the index: an exact id list and count, no scan of the users table.
    assert condition.exact_count is not None and 0 < condition.exact_count <= SPARSE_LIMIT
    assert UserPager(seeded).count(UserQuery("lovelace000")).total == condition.exact_count


def test_a_dense_fragment_walks_the_sort_index_and_is_counted_only_up_to_a_cap(
    seeded: Context,
) -> None:
    with seeded.db.read() as session:
        condition = search_condition(session, "example")
    assert condition.exact_count is None  # too many matches to list: filtered while walking
    matches = UserPager(seeded).count(UserQuery("example"))
    assert matches.total == 5_000 and matches.exact  # below the cap the count is still exact


@pytest.mark.parametrize("sort", sorted(SORT_COLUMNS))
def test_every_sorted_page_is_an_index_walk_not_a_sort(seeded: Context, sort: str) -> None:
    column = SORT_COLUMNS[sort]
    statement = _with_lockout().order_by(col(column), col(User.username_key)).limit(100)
    plan = _plan(seeded, statement)
    assert "USE TEMP B-TREE FOR ORDER BY" not in plan, plan
    assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan
