"""Figures 1–4 in a child process: the real console, headless, against a seeded database.

Run by ``benchmarks/run.py`` (one process per database, so its peak RSS is the app's own):

    python benchmarks/bench_ui.py --db URL --key-file PATH [--repeats 7] [--rounds 5]
                                  [--profile FILE.prof]

Prints one JSON object on its last stdout line: seconds per sample for each figure, the match
counts seen by each search, ``peak_rss_kb`` (this process's VmHWM after figures 1–3; not
``ru_maxrss``, which Linux carries over from the parent's memory at fork/exec),
``peak_rss_with_login_kb`` (after one argon2id password hash, as a real login does), and
``database``: the same counts and pages timed alone, outside the app (the database's share).

How "painted" is decided: the condition is polled every 2 ms (``asyncio.sleep``, so the poll does
not itself wait for the app to go idle), then ``table.wait_for_refresh()`` waits until the screen
has processed its refresh (Textual runs ``call_after_refresh`` callbacks only once no widget is
dirty, i.e. after the compositor rendered the update; headless, nothing is written to a terminal).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import secrets
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from textual import events
from textual.css.query import NoMatches
from textual.message import Message

from mfa_tui.core import passwords
from mfa_tui.core.access import Actor
from mfa_tui.core.config import Config
from mfa_tui.core.context import Context, open_context
from mfa_tui.core.errors import NotFound
from mfa_tui.core.models import Role
from mfa_tui.core.services.users import UserPager, UserQuery, UserService, UserView
from mfa_tui.ui.app import MfaTuiApp
from mfa_tui.ui.screens.login import LoginScreen
from mfa_tui.ui.screens.users import UsersScreen
from mfa_tui.ui.widgets.user_table import UserTable

ADMIN = "bench-admin"
# 1 character, 2 characters, a fragment in most emails, an exact username (user number 80 of
# ``generated_users``), a fragment matching nothing.
SEARCHES = ("a", "al", "com", "ada.allen0000080", "zzqx")
POLL_SECONDS = 0.002
WAIT_SECONDS = 60.0


class BenchError(Exception):
    """A figure could not be measured; the message says which and why."""


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.perf_counter() + WAIT_SECONDS
    while not condition():
        if time.perf_counter() > deadline:
            raise BenchError(f"timed out after {WAIT_SECONDS:.0f} s waiting for {what}")
        await asyncio.sleep(POLL_SECONDS)


class LoadedCounter:
    """Counts ``UserTable.Loaded`` messages (the first page is in place; the count may follow)."""

    def __init__(self) -> None:
        self.count = 0
        self._last: Message | None = None

    def hook(self, message: Message) -> None:
        # The same message is dispatched on the table and again on the screen it bubbles to.
        if isinstance(message, UserTable.Loaded) and message is not self._last:
            self._last = message
            self.count += 1


def bench_admin(ctx: Context) -> UserView:
    """The administrator who signs in. ``run.py`` creates it beforehand, so that the argon2id
    hash of its password (64 MiB) does not count in this process's peak RSS."""
    users = UserService(ctx)
    try:
        return users.get(ADMIN)
    except NotFound:
        return users.create(Actor.cli(), ADMIN, role=Role.ADMIN, password=secrets.token_urlsafe(16))


def users_table(app: MfaTuiApp, previous: object) -> UserTable | None:
    """The ``#users`` table of a UsersScreen other than ``previous``, once it has rows."""
    screen = app.screen
    if not isinstance(screen, UsersScreen) or screen is previous:
        return None
    try:
        table = screen.query_one("#users", UserTable)
    except NoMatches:
        return None
    return table if table.total > 0 and table.cached_rows > 0 else None


async def measure(ctx: Context, admin: UserView, repeats: int, rounds: int) -> dict[str, object]:
    loaded = LoadedCounter()
    app = MfaTuiApp(context=ctx)
    results: dict[str, object] = {}
    async with app.run_test(size=(120, 40), message_hook=loaded.hook) as pilot:
        await wait_until(lambda: isinstance(app.screen, LoginScreen), "the login screen")
        await pilot.pause()

        # 1. Screen opened → first rows painted (the first time through start_session).
        opened: list[float] = []
        for repeat in range(repeats):
            previous = app.screen
            start = time.perf_counter()
            if repeat == 0:
                app.start_session(admin, "benchmark")
            else:
                app.switch_screen(UsersScreen())
            await wait_until(
                lambda previous=previous: users_table(app, previous) is not None,
                "the users screen's first page",
            )
            table = users_table(app, previous)
            assert table is not None
            await table.wait_for_refresh()
            opened.append(time.perf_counter() - start)
            await pilot.pause()
        results["open"] = opened

        # 2. Search keystroke → rows updated, from the call the debounced search makes: the first
        # Loaded message, posted once the first page is on the table (before its count).
        screen = app.screen
        assert isinstance(screen, UsersScreen)
        table = screen.query_one("#users", UserTable)
        searches: dict[str, list[float]] = {text: [] for text in SEARCHES}
        matches: dict[str, str] = {}
        for _ in range(rounds):
            for text in SEARCHES:
                before = loaded.count
                start = time.perf_counter()
                table.load(UserQuery(text))
                await wait_until(
                    lambda before=before: loaded.count > before,
                    f"the search {text!r} to load",
                )
                await table.wait_for_refresh()
                searches[text].append(time.perf_counter() - start)
                # The rows come first; the count may follow (it is not part of the figure).
                await wait_until(lambda: not table.counting, f"the count of {text!r}")
                matches[text] = f"{table.total:,}{'' if table.exact else '+'}"
                await pilot.pause()
        if matches[SEARCHES[3]] != "1":
            raise BenchError(f"the exact username {SEARCHES[3]!r} matched {matches[SEARCHES[3]]}")
        results["search"] = searches
        results["matches"] = matches

        # 3. End → the page holding the last row cached and painted (a fresh list each time, so
        # the last page is never already cached).
        ended: list[float] = []
        table.focus()
        for _ in range(repeats):
            before = loaded.count
            table.load(UserQuery())
            await wait_until(
                lambda before=before: loaded.count > before and not table.counting,
                "the full list and its count",
            )
            await table.wait_for_refresh()
            await pilot.pause()
            if not table.has_focus:
                raise BenchError("the users table lost the focus; End would not reach it")
            start = time.perf_counter()
            # What the terminal driver posts for the key (pilot.press adds two idle waits).
            app.post_message(events.Key("end", None))
            await wait_until(
                lambda: (
                    table.total > 0
                    and table.cursor == table.total - 1
                    and table.selected_user is not None
                ),
                "the last row after End",
            )
            await table.wait_for_refresh()
            ended.append(time.perf_counter() - start)
            await pilot.pause()
        results["end"] = ended
        results["total"] = table.total
    return results


def database_share(ctx: Context, rounds: int) -> dict[str, object]:
    """The worker's part of figures 1–3, timed alone: the count and the page it fetches.

    The difference between a figure and this is the UI's part (messages, layout, painting).
    """
    pager = UserPager(ctx, Actor.cli())
    size = UserTable.PAGE_SIZE

    def first_page(query: UserQuery) -> tuple[float, float]:
        start = time.perf_counter()
        matches = pager.count(query)
        counted = time.perf_counter()
        if matches.total:
            pager.page(query, 0, size, matches.total, exact=matches.exact)
        return counted - start, time.perf_counter() - counted

    share: dict[str, object] = {}
    for text in ("", *SEARCHES):
        samples = [first_page(UserQuery(text)) for _ in range(rounds)]
        share[text] = {"count": [c for c, _ in samples], "page": [p for _, p in samples]}
    matches = pager.count(UserQuery())
    last = (matches.total - 1) // size * size
    ends = []
    for _ in range(rounds):
        start = time.perf_counter()
        pager.page(UserQuery(), last, size, matches.total, exact=matches.exact)
        ends.append(time.perf_counter() - start)
    share["end"] = ends
    return share


def peak_rss_kb() -> int:
    """This process's own peak RSS. ``getrusage().ru_maxrss`` would not do: at exec, Linux
    keeps the larger of it and the parent's RSS (a child of a 300 MB parent reports 300 MB)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise BenchError("no VmHWM in /proc/self/status: cannot read this process's peak RSS")


class ThreadProfiles:
    """cProfile for the main thread and for every worker thread, merged at the end."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()
        self._original_run = threading.Thread.run

    def __enter__(self) -> cProfile.Profile:
        profiles = self

        def run(thread: threading.Thread) -> None:
            profile = cProfile.Profile()
            with profiles._lock:
                profiles.profiles.append(profile)
            profile.enable()
            try:
                profiles._original_run(thread)
            finally:
                profile.disable()

        threading.Thread.run = run  # type: ignore[method-assign]
        main = cProfile.Profile()
        self.profiles.append(main)
        main.enable()
        return main

    def __exit__(self, *exc: object) -> None:
        self.profiles[0].disable()
        threading.Thread.run = self._original_run  # type: ignore[method-assign]

    def dump(self, path: Path) -> None:
        stats = pstats.Stats(self.profiles[0])
        for profile in self.profiles[1:]:
            try:
                stats.add(profile)
            except TypeError:  # a thread that never ran anything
                continue
        stats.dump_stats(str(path))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--key-file", required=True, type=Path)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", type=Path, help="write a cProfile of all threads here")
    args = parser.parse_args()

    ctx = open_context(Config(args.db, args.key_file))
    try:
        admin = bench_admin(ctx)
        if args.profile:
            profiles = ThreadProfiles()
            with profiles:
                results = asyncio.run(measure(ctx, admin, args.repeats, args.rounds))
            profiles.dump(args.profile)
        else:
            results = asyncio.run(measure(ctx, admin, args.repeats, args.rounds))
        results["peak_rss_kb"] = peak_rss_kb()
        # What a real session adds: the login checks a password with argon2id.
        passwords.hasher().hash(secrets.token_urlsafe(16))
        results["peak_rss_with_login_kb"] = peak_rss_kb()
        results["database"] = database_share(ctx, args.rounds)
    except BenchError as error:
        print(f"bench_ui: {error}", file=sys.stderr)
        return 1
    finally:
        ctx.close()
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
