"""Finding users by a fragment of their username, display name or email — at a million users.

A substring search is served by an index (SQLite FTS5 trigram, PostgreSQL pg_trgm; migration
0003). A fragment that matches few users is answered from the index alone. A fragment that
matches many (``com`` in most emails) is answered by walking the sort index and filtering, which
finds a page of matches at once precisely because they are dense; its count is then only
reported up to ``COUNT_CAP``. Fragments shorter than the index's three characters take a prefix
path on indexed columns in the console (``short_as_prefix``); the CLI keeps exact substring
semantics for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, literal_column, or_, select, text
from sqlalchemy.orm import Session

from mfa_tui.core.models import User
from mfa_tui.core.text import escape_like

# Created by migration 0003, unknown to the models (see tests/core/test_migrations.py).
SEARCH_INDEX_OBJECTS = frozenset(
    {
        "users_search",
        "users_search_data",
        "users_search_idx",
        "users_search_docsize",
        "users_search_config",
        "ix_users_search_trgm",
    }
)
# At most this many matches are taken from the index; more means "dense": walk and filter.
SPARSE_LIMIT = 2_000
# A dense search's count is reported as "at least" this many.
COUNT_CAP = 10_000
_PG_SEARCH_EXPRESSION = literal_column(
    "(lower(users.username) || chr(1) || lower(coalesce(users.display_name, '')) || chr(1) || "
    "lower(coalesce(users.email, '')))"
)


@dataclass(frozen=True)
class SearchCondition:
    where: ColumnElement[bool] | None
    # The number of matches when the index returned all of them; None when they are dense.
    exact_count: int | None = None


def search_condition(
    session: Session,
    fragment: str,
    *,
    short_as_prefix: bool = False,
    sorted_by_username: bool = True,
) -> SearchCondition:
    """``sorted_by_username``: whether rows are wanted in username order (or only counted); a
    short prefix is then always an index range."""
    fragment = fragment.strip()
    if not fragment:
        return SearchCondition(None)
    if len(fragment) < 3:
        if not short_as_prefix:
            return SearchCondition(_substring(fragment))
        in_range = _username_range(fragment)
        if sorted_by_username or _at_most(session, in_range, SPARSE_LIMIT):
            return SearchCondition(in_range)
        return SearchCondition(_username_starts_with(fragment))
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        ids = _fts_ids(session, fragment)
        if ids is not None and len(ids) <= SPARSE_LIMIT:
            return SearchCondition(User.id.in_(ids) if ids else literal_column("0") == 1, len(ids))  # type: ignore[union-attr]
        return SearchCondition(_substring(fragment))
    if dialect == "postgresql":
        # The planner picks the trigram index for rare fragments and the sort index for dense ones.
        return SearchCondition(
            _PG_SEARCH_EXPRESSION.like(f"%{escape_like(fragment.lower())}%", escape="\\")
        )
    return SearchCondition(_substring(fragment))


# The row-by-row trigger of migration 0003, which a bulk insert sets aside (see bulk_index_users).
_SQLITE_INSERT_TRIGGER = (
    "CREATE TRIGGER users_search_insert AFTER INSERT ON users BEGIN "
    "INSERT INTO users_search(rowid, username, display_name, email) "
    "VALUES (new.id, new.username, new.display_name, new.email); END"
)


@contextmanager
def bulk_index_users(session: Session) -> Iterator[None]:
    """Index the users inserted in the block in one statement instead of one trigger per row.

    On SQLite, inside the caller's write transaction (BEGIN IMMEDIATE: no other writer can
    insert while the trigger is set aside, and a rollback restores it). On PostgreSQL the
    table's statistics are brought up to date instead.
    """
    if session.get_bind().dialect.name != "sqlite":
        yield
        # PostgreSQL's GIN index needs nothing, but its planner does: until autovacuum comes round
        # its statistics describe the table before the insert, and picks the wrong plans ("com"
        # through the trigram index, counts by sequential scan).
        session.execute(text("ANALYZE users"))
        return
    before = session.execute(text("SELECT coalesce(max(id), 0) FROM users")).scalar_one()
    session.execute(text("DROP TRIGGER users_search_insert"))
    # A large page cache for the insert: six indexes over a million rows thrash the default 2 MB.
    previous_cache = session.execute(text("PRAGMA cache_size")).scalar_one()
    session.execute(text("PRAGMA cache_size = -262144"))
    yield
    session.execute(text(f"PRAGMA cache_size = {int(previous_cache)}"))
    session.execute(
        text(
            "INSERT INTO users_search(rowid, username, display_name, email) "
            "SELECT id, username, display_name, email FROM users WHERE id > :before"
        ),
        {"before": before},
    )
    session.execute(text(_SQLITE_INSERT_TRIGGER))


def count_rows(session: Session, statement: Any, condition: SearchCondition) -> tuple[int, bool]:
    """(count, exact) of ``statement``'s rows; a dense search is counted only up to COUNT_CAP."""
    if condition.where is not None:
        statement = statement.where(condition.where)
    if condition.where is not None and condition.exact_count is None:
        statement = statement.limit(COUNT_CAP + 1)
        capped = session.execute(
            select(func.count()).select_from(statement.subquery())
        ).scalar_one()
        return min(int(capped), COUNT_CAP), capped <= COUNT_CAP
    return int(
        session.execute(select(func.count()).select_from(statement.subquery())).scalar_one()
    ), True


def _fts_ids(session: Session, fragment: str) -> list[int] | None:
    query = '"' + fragment.replace('"', '""') + '"'
    rows = session.execute(
        text("SELECT rowid FROM users_search WHERE users_search MATCH :query LIMIT :limit"),
        {"query": query, "limit": SPARSE_LIMIT + 1},
    ).all()
    return [row[0] for row in rows]


def _substring(fragment: str) -> ColumnElement[bool]:
    pattern = f"%{escape_like(fragment)}%"
    return or_(
        User.username.ilike(pattern, escape="\\"),  # type: ignore[attr-defined]
        User.display_name.ilike(pattern, escape="\\"),  # type: ignore[union-attr]
        User.email.ilike(pattern, escape="\\"),  # type: ignore[union-attr]
    )


def _username_range(fragment: str) -> ColumnElement[bool]:
    """Usernames starting with the fragment: a range of the username index, which every sort
    index also carries as its tie-breaker."""
    lowered = fragment.casefold()
    upper_bound = lowered[:-1] + chr(ord(lowered[-1]) + 1)
    return (User.username_key >= lowered) & (User.username_key < upper_bound)  # type: ignore[operator,return-value]


def _username_starts_with(fragment: str) -> ColumnElement[bool]:
    """The same test in a form the planner cannot turn into a range. For a common prefix in
    another order than username's: it would otherwise take the range and sort all its rows
    (200,000 for "a" at a million users) for a page of 100, where walking the sort index finds
    them at once (the username is in that index)."""
    lowered = fragment.casefold()
    return func.substr(User.username_key, 1, len(lowered)) == lowered


def _at_most(session: Session, condition: ColumnElement[bool], limit: int) -> bool:
    """Whether at most ``limit`` users meet an indexed ``condition`` (reads at most limit + 1)."""
    found = select(User.id).where(condition).limit(limit + 1).subquery()
    return session.execute(select(func.count()).select_from(found)).scalar_one() <= limit
