"""The users table's queries are served by indexes (SQLite query plans), so they stay fast at a million users."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import col

from mfa_tui.core import search
from mfa_tui.core.access import Actor
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
    assert (
        UserPager(seeded, Actor.cli()).count(UserQuery("lovelace000")).total
        == condition.exact_count
    )


def test_a_dense_fragment_walks_the_sort_index_and_is_counted_only_up_to_a_cap(
    seeded: Context,
) -> None:
    with seeded.db.read() as session:
        condition = search_condition(session, "example")
    assert condition.exact_count is None  # too many matches to list: filtered while walking
    matches = UserPager(seeded, Actor.cli()).count(UserQuery("example"))
    assert matches.total == 5_000 and matches.exact  # below the cap the count is still exact


@pytest.mark.parametrize("sort", sorted(SORT_COLUMNS))
def test_every_sorted_page_is_an_index_walk_not_a_sort(seeded: Context, sort: str) -> None:
    column = SORT_COLUMNS[sort]
    statement = _with_lockout().order_by(col(column), col(User.username_key)).limit(100)
    plan = _plan(seeded, statement)
    assert "USE TEMP B-TREE FOR ORDER BY" not in plan, plan
    assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan


def _page_plan(ctx: Context, fragment: str, sort: str) -> str:
    with ctx.db.read() as session:
        condition = search_condition(
            session,
            fragment,
            short_as_prefix=True,
            sorted_by_username=SORT_COLUMNS[sort] is User.username_key,
        )
    assert condition.where is not None
    statement = (
        _with_lockout()
        .where(condition.where)
        .order_by(col(SORT_COLUMNS[sort]), col(User.username_key))
        .limit(100)
    )
    return _plan(ctx, statement)


def test_a_short_prefix_is_a_range_of_the_username_index_in_username_order(
    seeded: Context,
) -> None:
    plan = _page_plan(seeded, "a", "username")
    assert "username_key>? AND username_key<?" in plan, plan
    assert "USE TEMP B-TREE FOR ORDER BY" not in plan, plan


def test_a_common_short_prefix_in_another_order_walks_that_sort_index(
    seeded: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Taking the username range would sort all its rows (200,000 for "a" at a million users)."""
    monkeypatch.setattr(search, "SPARSE_LIMIT", 100)  # "a" matches 1,000 of the 5,000 seeded
    plan = _page_plan(seeded, "a", "display_name")
    assert "USE TEMP B-TREE FOR ORDER BY" not in plan, plan
    # A rare prefix keeps the range: sorting its few rows beats walking the whole index.
    plan = _page_plan(seeded, "zq", "display_name")
    assert "username_key>? AND username_key<?" in plan, plan
