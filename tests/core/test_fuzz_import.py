"""Hostile CSV files for ``users import``, on SQLite and PostgreSQL (hypothesis, fixed seed).

Whatever the bytes, ``import_users`` either imports or lists the bad lines, and raises nothing but
``InputError``; and it is all or nothing: the users in the database afterwards are exactly those
before plus the report's imported ones (none when a line is bad and ``--skip-invalid`` is off).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func
from sqlmodel import select

from mfa_tui.core.access import Actor
from mfa_tui.core.context import Context
from mfa_tui.core.csv_import import COLUMNS
from mfa_tui.core.errors import InputError
from mfa_tui.core.models import User
from mfa_tui.core.services.users import import_users
from tests.helpers.fuzz import fuzz

EXAMPLES = 60
FUZZ = fuzz(EXAMPLES)

# Text as hostile as a file can carry: controls, escapes, bidi marks, quotes, separators, emoji.
odd_text = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(list(",\";\r\n\t\x1b\x07\u202e\u200b\ufeff=+-@\\'")),
    ),
    max_size=40,
)
plausible = st.sampled_from(
    [
        "",
        "alice",
        "Alice",
        "ALICE",
        "bob@example.com",
        "+14155550123",
        "admin",
        "helpdesk",
        "user",
        "totp",
        "none",
        "email",
        "true",
        "false",
        "x" * 300,
        "é" * 65,
        "Zoë 李",
    ]
)
cell = st.one_of(plausible, odd_text)
fresh_username = st.one_of(
    st.from_regex(r"[a-z][a-z0-9._@+-]{0,20}", fullmatch=True),
    st.text(st.characters(categories=["L", "Nd"]), min_size=1, max_size=64),
)
header = st.one_of(
    st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=7, unique=True).map(
        lambda names: ["username", *[n for n in names if n != "username"]]
    ),
    st.lists(st.one_of(st.sampled_from(COLUMNS), odd_text), min_size=0, max_size=8),
)


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """Mostly well-formed CSV with hostile cells; sometimes raw bytes or a broken encoding."""
    kind = draw(st.sampled_from(["csv", "csv", "csv", "bytes", "text"]))
    if kind == "bytes":
        return draw(st.binary(max_size=400))
    if kind == "text":
        return draw(st.text(max_size=400)).encode("utf-8", errors="surrogatepass")
    names = draw(header)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(names)
    for row in draw(st.lists(st.lists(cell, max_size=9), max_size=8)):
        if draw(st.booleans()):
            # Often the right number of fields and a fresh, valid username first.
            row = [draw(fresh_username), *row, *[""] * len(names)][: len(names)]
        writer.writerow(row)
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    return buffer.getvalue().encode(encoding, errors="replace")


def count_users(ctx: Context) -> set[str]:
    with ctx.db.read() as session:
        return set(session.exec(select(User.username)).all())


@pytest.mark.parametrize("skip_invalid", [False, True], ids=["all-or-nothing", "skip-invalid"])
def test_any_file_is_imported_or_refused_and_never_half_saved(
    ctx: Context, tmp_path: Path, skip_invalid: bool
) -> None:
    tried = {"files": 0, "refused": 0, "imported": 0}

    @FUZZ
    @given(content=csv_files())
    def check(content: bytes) -> None:
        tried["files"] += 1
        path = tmp_path / "people.csv"
        path.write_bytes(content)
        before = count_users(ctx)
        try:
            report = import_users(ctx, Actor.cli(), path, skip_invalid=skip_invalid)
        except InputError as refusal:
            assert str(refusal) and "\n" not in str(refusal)
            assert count_users(ctx) == before
            tried["refused"] += 1
            return
        after = count_users(ctx)
        assert len(after - before) == report.imported and before <= after
        if report.problems and not skip_invalid:
            assert report.imported == 0
        assert all(number >= 2 and sentence for number, sentence in report.problems)
        tried["imported"] += report.imported

    check()
    with ctx.db.read() as session:
        assert ctx.audit.verify(session).ok
        users = session.exec(select(func.count()).select_from(User)).one()
    assert users == tried["imported"]
    print(f"\ncsv import fuzz ({'skip' if skip_invalid else 'strict'}): {tried}")
