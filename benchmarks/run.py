"""Benchmarks of issue 6 ("Scale and speed"): each figure next to a baseline from the same run.

    python benchmarks/run.py [--quick] [--postgres URL | --no-postgres]
                             [--sizes 10000,100000,1000000] [--repeats 7] [--rounds 5]
                             [--data-dir DIR] [--profile DIR]

Prints a table: figure · measured (median and p95 where repeated) · baseline · ratio · target ·
met?. The machine is shared (2 cores): the load average is printed at the start and the end, and
figures compare against baselines measured in the same run.

Databases: SQLite files in a temporary folder and PostgreSQL (``--postgres``, default
``$MFA_TUI_TEST_POSTGRES_URL``) in a fresh schema per size, dropped at the end; users seeded with
``bulk_insert_users`` (timed). With ``--data-dir`` the seeded databases are kept (SQLite files
and keys there, schemas ``mfa_bench_kept_N``) and reused by the next run, which then skips the
seeding: at a million users that is most of the run.

Figures 1–4 run at every size in a child process (``bench_ui.py``, whose peak RSS is figure 4);
the smallest size is the baseline of the larger ones. At the largest size only: 6 in this
process, 8 and 9 as ``python -m mfa_tui`` processes, and on SQLite 5 (fresh processes of
``bench_cold_start.py``) and 7 (``users import`` into an empty database).

This is a report, not a test: it exits 0 when it measured everything, whatever was met, and 1
when a figure could not be measured.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import json
import os
import platform
import pstats
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pyotp
from sqlalchemy import create_engine, text

from mfa_tui.core.access import Actor
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.config import Config
from mfa_tui.core.context import Context, open_context
from mfa_tui.core.demo import bulk_insert_users, generated_users
from mfa_tui.core.errors import NotFound
from mfa_tui.core.models import Role
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.users import UserService

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = sys.executable
POSTGRES_ENV = "MFA_TUI_TEST_POSTGRES_URL"
FULL_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000, 50_000)
TARGET_SIZE = 1_000_000
IMPORT_ROWS = 100_000
QUICK_IMPORT_ROWS = 10_000
LIST_SEARCHES = ("lovelace", "com")
VERIFY_ROUND_TRIPS = 200
ADMIN = "bench-admin"  # as in bench_ui.py
CLOCK_USER = "bench-totp-clock"
PROCESS_USER = "bench-totp-{}"
# What the children must not inherit: they get the database and key from their arguments only.
CHILD_ENV = {
    name: value
    for name, value in os.environ.items()
    if name not in ("MFA_TUI_DATABASE_URL", "MFA_TUI_KEY_FILE", "MFA_TUI_SECRET_KEY")
}


class BenchError(Exception):
    """A figure could not be measured; the message says which and why."""


# Results -----------------------------------------------------------------------------------------


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def p95(samples: Sequence[float]) -> float:
    if len(samples) < 2:
        return samples[0]
    return statistics.quantiles(samples, n=20, method="inclusive")[18]


def seconds(value: float) -> str:
    if value < 0.01:
        return f"{value * 1000:.2f} ms"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"


def megabytes(kilobytes: float) -> str:
    return f"{kilobytes / 1024:.0f} MB"


@dataclass
class Row:
    figure: str
    measured: str
    baseline: str = "—"
    ratio: str = "—"
    target: str = "—"
    met: str = "—"


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)

    def error(self, figure: str, problem: str) -> None:
        self.errors.append(f"{figure}: {problem}")
        say(f"  !! {figure}: {problem}")


def timing(samples: Sequence[float]) -> str:
    if len(samples) == 1:
        return f"{seconds(samples[0])} (1 run)"
    return f"{seconds(median(samples))} · p95 {seconds(p95(samples))} (n={len(samples)})"


def ratio(value: float, baseline: float | None) -> str:
    return f"{value / baseline:.2f}×" if baseline else "—"


def yes_no(ok: bool) -> str:
    return "yes" if ok else "no"


def say(message: str) -> None:
    print(message, flush=True)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min; {os.cpu_count()} cores)"


# Processes ---------------------------------------------------------------------------------------


@dataclass
class Finished:
    seconds: float
    returncode: int
    stdout: str
    stderr: str


def run_process(
    command: Sequence[str],
    *,
    stdin: str | None = None,
    timeout: float = 120.0,
    env: dict[str, str] | None = None,
) -> Finished:
    """Wall time from spawn to exit (a blocking wait: ``wait(timeout)`` would poll, adding up
    to 50 ms), and what the child printed."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=ROOT,
            env=CHILD_ENV if env is None else env,
        )
        if stdin is not None:
            assert process.stdin is not None
            with suppress(BrokenPipeError):
                process.stdin.write(stdin.encode())
                process.stdin.close()
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        try:
            process.wait()
        finally:
            timer.cancel()
        elapsed = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        finished = Finished(
            elapsed,
            process.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )
    if finished.returncode == -9 and elapsed >= timeout:
        raise BenchError(f"{' '.join(command[:4])} … timed out after {timeout:.0f} s")
    return finished


def cli(url: str, key: Path, *arguments: str) -> list[str]:
    return [PYTHON, "-m", "mfa_tui", "--db", url, "--key-file", str(key), *arguments]


def last_line(text_output: str) -> str:
    lines = [line for line in text_output.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(nothing)"


def repeated(
    what: str,
    make: Callable[[int], tuple[list[str], str | None]],
    count: int,
    timeout: float,
    env: dict[str, str] | None = None,
) -> list[Finished]:
    """``count`` timed runs after one untimed warm-up (bytecode caches, page cache)."""
    runs = []
    for index in range(count + 1):
        command, stdin = make(index)
        finished = run_process(command, stdin=stdin, timeout=timeout, env=env)
        if finished.returncode != 0:
            raise BenchError(
                f"{what} exited {finished.returncode}: {last_line(finished.stderr or finished.stdout)}"
            )
        if index:
            runs.append(finished)
    return runs


# Databases ---------------------------------------------------------------------------------------


@dataclass
class Database:
    backend: str  # "SQLite" or "PostgreSQL"
    size: int
    url: str
    key: Path

    @property
    def label(self) -> str:
        return f"{self.backend} {self.size:,}"

    def config(self) -> Config:
        return Config(self.url, self.key)


@contextmanager
def context(database: Database, clock: FixedClock | None = None) -> Iterator[Context]:
    ctx = open_context(database.config(), clock)
    try:
        yield ctx
    finally:
        ctx.close()


def seeded(database: Database) -> bool:
    """A reused database (``--data-dir``) already holds the ``size`` generated users."""
    last = next(generated_users(1, start=database.size - 1))["username"]
    with context(database) as ctx:
        users = UserService(ctx)
        try:
            users.get(str(last))
        except NotFound:
            return False
        return users.count() >= database.size


def seed(database: Database) -> float | None:
    """Seconds to seed, or None when the database was already seeded (reused, ``--data-dir``).

    A database kept in ``--data-dir`` exists once its key file does (a kept PostgreSQL schema
    was set up with the key file beside the SQLite ones).
    """
    if database.key.exists():
        if seeded(database):
            return None
        raise BenchError(
            f"{database.label} was kept from an earlier run but does not hold {database.size:,} "
            "generated users: delete it (and its key file) or use another --data-dir"
        )
    with context(database) as ctx:
        start = time.perf_counter()
        bulk_insert_users(ctx, database.size)
        return time.perf_counter() - start


def postgres_problem(url: str) -> str | None:
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 5})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as error:
        return f"no PostgreSQL at {url}: {str(error).splitlines()[0]}"
    return None


@contextmanager
def postgres_schema(base_url: str, size: int, *, keep: bool) -> Iterator[str]:
    """A fresh schema for one size, dropped afterwards whatever happens — or, with ``keep``
    (``--data-dir``), one named after the size that is kept for the next run."""
    schema = f"mfa_bench_kept_{size}" if keep else f"mfa_bench_{os.getpid()}_{size}"
    engine = create_engine(base_url)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
    separator = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        if not keep:
            with engine.begin() as connection:
                connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()


def ensure_admin(database: Database) -> None:
    """The administrator bench_ui.py signs in as, created here so that hashing its password
    (argon2id, 64 MiB) does not count in the child's peak RSS."""
    with context(database) as ctx:
        users = UserService(ctx)
        try:
            users.get(ADMIN)
        except NotFound:
            users.create(Actor.cli(), ADMIN, role=Role.ADMIN, password=secrets.token_urlsafe(16))


def enroll_totp(ctx: Context, clock: FixedClock, username: str) -> str:
    """A user with an active authenticator (configured now, as the CLI would); its base32 secret.

    Enrolled again on every run, so a reused database never holds a time-step already spent.
    """
    users = UserService(ctx)
    actor = Actor.cli()
    try:
        users.get(username)
    except NotFound:
        users.create(actor, username, email=f"{username}@bench.invalid")
    mfa = MfaService(ctx)
    start = mfa.begin_enrollment(actor, username, "totp")
    assert start.provisioning_uri is not None
    secret = parse_qs(urlparse(start.provisioning_uri).query)["secret"][0]
    if not mfa.confirm_code(actor, start.credential_id, pyotp.TOTP(secret).at(clock.now())):
        raise BenchError(f"enrolling {username}: the first code was refused")
    mfa.activate(actor, username, start.credential_id)
    return secret


# Figures -----------------------------------------------------------------------------------------


@dataclass
class UiResult:
    opened: list[float]
    searches: dict[str, list[float]]
    matches: dict[str, str]
    ended: list[float]
    peak_rss_kb: int
    peak_rss_with_login_kb: int
    # The worker's queries timed alone: {"" or query: {"count": [...], "page": [...]}, "end": [...]}
    database: dict[str, object]

    def database_first_page(self, query: str) -> str:
        share = self.database[query]
        assert isinstance(share, dict)
        count, page = median(share["count"]), median(share["page"])
        return f"count {seconds(count)} + page {seconds(page)}"

    def database_alone(self, query: str) -> float:
        share = self.database[query]
        assert isinstance(share, dict)
        return float(median(share["count"]) + median(share["page"]))


def measure_ui(
    database: Database, repeats: int, rounds: int, profile: Path | None = None
) -> UiResult:
    """Figures 1–4, in a child process of its own."""
    command = [
        PYTHON,
        str(HERE / "bench_ui.py"),
        "--db",
        database.url,
        "--key-file",
        str(database.key),
        "--repeats",
        str(repeats),
        "--rounds",
        str(rounds),
    ]
    if profile is not None:
        command += ["--profile", str(profile)]
    finished = run_process(command, timeout=900)
    if finished.returncode != 0:
        raise BenchError(
            f"bench_ui.py exited {finished.returncode}: {last_line(finished.stderr or finished.stdout)}"
        )
    data = json.loads(last_line(finished.stdout))
    return UiResult(
        data["open"],
        data["search"],
        data["matches"],
        data["end"],
        int(data["peak_rss_kb"]),
        int(data["peak_rss_with_login_kb"]),
        data["database"],
    )


def ui_rows(
    report: Report,
    database: Database,
    result: UiResult,
    smallest: UiResult | None,
    bare_rss_kb: float | None,
) -> None:
    where = database.label
    at_smallest = f"@{SMALLEST[database.backend]:,}"
    opened = median(result.opened)
    baseline = median(smallest.opened) if smallest else None
    met = opened <= 0.5 and (baseline is None or opened <= 1.5 * baseline)
    report.add(
        Row(
            f"1. users screen opened → rows painted · {where}",
            f"{timing(result.opened)}; first {seconds(result.opened[0])}",
            f"{seconds(baseline)} {at_smallest}" if baseline else "—",
            ratio(opened, baseline),
            "≤ 0.5 s, ≤ 1.5× smallest",
            yes_no(met),
        )
    )
    report.add(
        Row(
            "   1. its queries alone (worker)",
            seconds(result.database_alone("")),
            result.database_first_page(""),
        )
    )
    pooled = [sample for samples in result.searches.values() for sample in samples]
    smallest_pooled = (
        [sample for samples in smallest.searches.values() for sample in samples]
        if smallest
        else None
    )
    report.add(
        Row(
            f"2. search → rows updated, all 5 queries · {where}",
            timing(pooled),
            f"{seconds(median(smallest_pooled))} {at_smallest}" if smallest_pooled else "—",
            ratio(median(pooled), median(smallest_pooled) if smallest_pooled else None),
            "median ≤ 50 ms, p95 ≤ 120 ms",
            yes_no(median(pooled) <= 0.050 and p95(pooled) <= 0.120),
        )
    )
    for query, samples in result.searches.items():
        alone = result.database_alone(query)
        report.add(
            Row(
                f"   2. {query!r} ({result.matches[query]} matches)",
                timing(samples),
                f"worker alone: {result.database_first_page(query)}",
                ratio(median(samples), alone),
            )
        )
    ended = median(result.ended)
    end_baseline = median(smallest.ended) if smallest else None
    end_page = result.database["end"]
    assert isinstance(end_page, list)
    report.add(
        Row(
            f"3. End → last rows painted · {where}",
            timing(result.ended),
            f"{seconds(end_baseline)} {at_smallest}" if end_baseline else "—",
            ratio(ended, end_baseline),
            "≤ 100 ms",
            yes_no(ended <= 0.100),
        )
    )
    report.add(Row("   3. last page fetched alone (worker)", seconds(median(end_page))))
    report.add(
        Row(
            f"4. peak RSS after figures 1–3 · {where}",
            megabytes(result.peak_rss_kb),
            f"{megabytes(bare_rss_kb)} bare app" if bare_rss_kb else "—",
            ratio(result.peak_rss_kb, bare_rss_kb),
            "≤ 150 MB",
            yes_no(result.peak_rss_kb <= 150 * 1024),
        )
    )
    report.add(
        Row(
            f"   4. + one argon2id password check (a real login) · {where}",
            megabytes(result.peak_rss_with_login_kb),
            target="≤ 150 MB",
            met=yes_no(result.peak_rss_with_login_kb <= 150 * 1024),
        )
    )


# The smallest size of each backend, the baseline of the scale figures (set in main).
SMALLEST: dict[str, int] = {}


def cold_start(report: Report, database: Database, repeats: int) -> float | None:
    """Figure 5; returns the bare app's median peak RSS (KB), the baseline of figure 4."""
    bare = [PYTHON, str(HERE / "bench_cold_start.py"), "bare"]
    mfa = [
        PYTHON,
        str(HERE / "bench_cold_start.py"),
        "mfa",
        "--db",
        database.url,
        "--key-file",
        str(database.key),
    ]
    runs: dict[str, list[Finished]] = {"bare": [], "mfa": []}
    # A warm-up pair first, then alternate which of the two goes first.
    for index in range(repeats + 1):
        order = ("bare", "mfa") if index % 2 == 0 else ("mfa", "bare")
        for name in order:
            finished = run_process(bare if name == "bare" else mfa, timeout=120)
            if finished.returncode != 0:
                raise BenchError(
                    f"the {name} start exited {finished.returncode}: {last_line(finished.stderr)}"
                )
            if index:
                runs[name].append(finished)
    bare_times = [run.seconds for run in runs["bare"]]
    mfa_times = [run.seconds for run in runs["mfa"]]
    value = median(mfa_times) / median(bare_times)
    report.add(
        Row(
            f"5. cold start → login screen painted · {database.label}",
            timing(mfa_times),
            f"{seconds(median(bare_times))} bare app (p95 {seconds(p95(bare_times))})",
            f"{value:.2f}×",
            "≤ 1.3× bare app",
            yes_no(value <= 1.3),
        )
    )
    report.add(
        Row(
            "   5. peak RSS at the login screen",
            megabytes(median([peak_rss_kb(run) for run in runs["mfa"]])),
            megabytes(median([peak_rss_kb(run) for run in runs["bare"]])) + " bare app",
        )
    )
    return median([peak_rss_kb(run) for run in runs["bare"]])


def peak_rss_kb(finished: Finished) -> int:
    """The ``peak_rss_kb=N`` line a bench_cold_start.py child prints last on stderr."""
    match = re.search(r"^peak_rss_kb=(\d+)$", finished.stderr, re.MULTILINE)
    if not match:
        raise BenchError(
            f"a cold start child did not report its peak RSS: {last_line(finished.stderr)}"
        )
    return int(match[1])


def verify_round_trip(report: Report, database: Database) -> None:
    """Figure 6: MfaService.verify in this process, a fresh time-step each time (argon2 is not
    involved: a TOTP check is an HMAC)."""
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0) - timedelta(days=1))
    with context(database, clock) as ctx:
        secret = enroll_totp(ctx, clock, CLOCK_USER)
        totp = pyotp.TOTP(secret)
        mfa = MfaService(ctx)
        verifies = []
        for _ in range(VERIFY_ROUND_TRIPS):
            clock.advance(seconds=30)
            code = totp.at(clock.now())
            start = time.perf_counter()
            outcome = mfa.verify(CLOCK_USER, code)
            verifies.append(time.perf_counter() - start)
            if not outcome.accepted:
                raise BenchError(f"verify refused a fresh code ({outcome.reason})")
        selects = []
        for _ in range(VERIFY_ROUND_TRIPS):
            start = time.perf_counter()
            with ctx.db.read() as session:
                session.execute(text("SELECT 1")).scalar_one()
            selects.append(time.perf_counter() - start)
    sqlite = database.backend == "SQLite"
    report.add(
        Row(
            f"6. TOTP verify, in process · {database.label}",
            timing(verifies),
            f"{seconds(median(selects))} SELECT 1",
            ratio(median(verifies), median(selects)),
            "≤ 2 ms median" if sqlite else "— (PostgreSQL)",
            yes_no(median(verifies) <= 0.002) if sqlite else "—",
        )
    )


def write_import_csv(path: Path, first: int, count: int) -> None:
    """A ``users import`` file: valid users with every column filled, a third pending TOTP."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "username",
                "display_name",
                "email",
                "phone",
                "role",
                "mfa_type",
                "configure_later",
            ]
        )
        for number in range(first, first + count):
            name = f"import.user{number:07d}"
            later = number % 3 == 0
            writer.writerow(
                [
                    name,
                    f"Imported User {number}",
                    f"{name}@example.org",
                    f"+1415555{number % 10_000:04d}",
                    "helpdesk" if number % 1000 == 0 else "user",
                    "totp" if later else "none",
                    "true" if later else "false",
                ]
            )


def import_csv(report: Report, workdir: Path, rows: int) -> None:
    """Figure 7: ``users import`` of ``rows`` users into a database that exists but is empty."""

    def fresh(name: str) -> Database:
        database = Database(
            "SQLite", 0, f"sqlite:///{workdir / f'{name}.db'}", workdir / f"{name}.key"
        )
        for leftover in workdir.glob(f"{name}.*"):
            leftover.unlink()
        with context(database):
            pass  # schema and key created here, not in the timed process
        return database

    workdir.mkdir(parents=True, exist_ok=True)
    big = workdir / "import.csv"
    write_import_csv(big, 0, rows)
    database = fresh("import-db")
    finished = run_process(
        cli(database.url, database.key, "users", "import", str(big)), timeout=600
    )
    if finished.returncode != 0 or f"Imported {rows} user" not in finished.stdout:
        raise BenchError(
            f"users import exited {finished.returncode}: {last_line(finished.stderr or finished.stdout)}"
        )
    small = fresh("import-one")
    baselines = []
    for index in range(3):
        one = workdir / f"import-one-{index}.csv"
        write_import_csv(one, index, 1)
        baseline_run = run_process(cli(small.url, small.key, "users", "import", str(one)))
        if baseline_run.returncode != 0:
            raise BenchError(f"users import of one row failed: {last_line(baseline_run.stderr)}")
        baselines.append(baseline_run.seconds)
    report.add(
        Row(
            f"7. users import, {rows:,} rows · SQLite",
            timing([finished.seconds]),
            f"{seconds(median(baselines))} for 1 row",
            ratio(finished.seconds, median(baselines)),
            "≤ 15 s" if rows == IMPORT_ROWS else f"≤ 15 s for {IMPORT_ROWS:,}",
            yes_no(finished.seconds <= 15) if rows == IMPORT_ROWS else "—",
        )
    )


def list_processes(report: Report, database: Database, repeats: int, python_pass: float) -> None:
    """Figure 8: ``users list --json --search X --limit 50`` as a whole process."""
    for search in LIST_SEARCHES:
        command = cli(
            database.url,
            database.key,
            "users",
            "list",
            "--json",
            "--search",
            search,
            "--limit",
            "50",
        )
        runs = repeated(
            f"users list --search {search}",
            lambda _, command=command: (command, None),
            repeats,
            120,
        )
        listed = json.loads(runs[-1].stdout)
        if not listed:
            raise BenchError(f"users list --search {search} listed nobody")
        times = [run.seconds for run in runs]
        report.add(
            Row(
                f"8. users list --search {search} · {database.label}",
                timing(times),
                f"{seconds(python_pass)} python -c pass",
                ratio(median(times), python_pass),
                "≤ 1.0 s",
                yes_no(median(times) <= 1.0),
            )
        )


def verify_processes(report: Report, database: Database, repeats: int, python_pass: float) -> None:
    """Figure 9: ``verify NAME`` as a whole process, a code at real time on stdin: answered by the
    verify service (``mfa-tui verify-service``, started for the run) and, as a second row, in
    process (no service). Each run verifies a different user, so no run meets a time-step
    already spent by another."""
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10))
    with context(database, clock) as ctx:
        secrets_by_user = {
            PROCESS_USER.format(index): enroll_totp(ctx, clock, PROCESS_USER.format(index))
            for index in range(2 * (repeats + 1))
        }
    users = list(secrets_by_user)

    def make(
        offset: int, command: Callable[[str], list[str]]
    ) -> Callable[[int], tuple[list[str], str]]:
        def one(index: int) -> tuple[list[str], str]:
            name = users[offset + index]
            return command(name), pyotp.TOTP(secrets_by_user[name]).now() + "\n"

        return one

    with verify_service(database) as env:
        served = repeated(
            "verify (service)",
            make(0, lambda name: [PYTHON, "-m", "mfa_tui", "verify", name]),
            repeats,
            120,
            env=env,
        )
    in_process = repeated(
        "verify",
        make(repeats + 1, lambda name: cli(database.url, database.key, "verify", name)),
        repeats,
        120,
    )
    for title, runs in (("verify service", served), ("in process", in_process)):
        times = [run.seconds for run in runs]
        report.add(
            Row(
                f"9. verify process (TOTP), {title} · {database.label}",
                timing(times),
                f"{seconds(python_pass)} python -c pass",
                ratio(median(times), python_pass),
                "≤ 0.5 s",
                yes_no(median(times) <= 0.5),
            )
        )


@contextmanager
def verify_service(database: Database) -> Iterator[dict[str, str]]:
    """A running ``mfa-tui verify-service`` on ``database``; yields the environment of its
    clients (a config file naming the database, the key and the socket, as on a server)."""
    folder = Path(tempfile.mkdtemp(prefix="mfa-bench-vs-"))  # short: a socket path ≤ 107 bytes
    socket_path = folder / "verify.sock"
    config = folder / "config.toml"
    config.write_text(
        f'database_url = "{database.url}"\nkey_file = "{database.key}"\n'
        f'verify_socket = "{socket_path}"\n'
    )
    env = {**CHILD_ENV, "MFA_TUI_CONFIG": str(config)}
    service = subprocess.Popen(
        [PYTHON, "-m", "mfa_tui", "verify-service"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not socket_path.is_socket():
            if service.poll() is not None or time.monotonic() > deadline:
                raise BenchError(
                    f"the verify service did not start: {last_line(service.stderr.read() if service.poll() is not None else '')}"
                )
            time.sleep(0.05)
        yield env
    finally:
        service.terminate()
        try:
            service.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
        shutil.rmtree(folder, ignore_errors=True)


# Profiles (--profile) ----------------------------------------------------------------------------


def print_profile(path: Path, title: str, limit: int = 25) -> None:
    say(f"\n--- {title}: top {limit} by cumulative time ({path}) ---")
    stats = pstats.Stats(str(path))
    stats.sort_stats("cumulative").print_stats(limit)
    say(f"--- {title}: top {limit} by own time ---")
    stats.sort_stats("tottime").print_stats(limit)


def profile_process(path: Path, arguments: list[str], title: str, limit: int = 20) -> None:
    """cProfile of a whole ``python`` process (``arguments`` follow the interpreter)."""
    finished = run_process([PYTHON, "-m", "cProfile", "-o", str(path), *arguments], timeout=900)
    if finished.returncode != 0 or not path.exists():
        raise BenchError(f"profiling {title} failed: {last_line(finished.stderr)}")
    print_profile(path, title, limit)


def profiles(directory: Path, database: Database, repeats: int, rounds: int) -> None:
    """Where the time goes: cProfile of the UI child (all threads), of the processes, of verify
    in process, and ``-X importtime`` of the cold start. Extra runs: the timings above are not
    skewed by the profiler."""
    directory.mkdir(parents=True, exist_ok=True)
    ui_profile = directory / f"ui-{database.size}.prof"
    measure_ui(database, repeats, rounds, profile=ui_profile)
    print_profile(ui_profile, f"users screen at {database.label} (all threads)")

    cold = [str(HERE / "bench_cold_start.py"), "mfa", "--db", database.url]
    cold += ["--key-file", str(database.key)]
    profile_process(directory / "cold-start.prof", cold, f"cold start at {database.label}")
    importtime = run_process([PYTHON, "-X", "importtime", *cold])
    (directory / "importtime-mfa.txt").write_text(importtime.stderr)
    entries = []
    for line in importtime.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if match:
            entries.append((int(match[2]), int(match[1]), len(match[3]) // 2, match[4]))
    say("\n--- cold start, -X importtime: top 25 by cumulative (µs, own µs, nesting level) ---")
    for cumulative, own, level, name in sorted(entries, reverse=True)[:25]:
        say(f"{cumulative:>10,} {own:>9,} {level:>3}  {name}")
    top_level = sum(cumulative for cumulative, _, level, _ in entries if level == 0)
    say(f"all imports: {top_level / 1e6:.2f} s")

    for search in LIST_SEARCHES:
        arguments = cli(database.url, database.key, "users", "list", "--json", "--search", search)
        profile_process(
            directory / f"users-list-{search}.prof",
            [*arguments[1:], "--limit", "50"],
            f"users list --search {search} at {database.label}",
        )

    rows = 20_000
    workdir = directory / "import"
    workdir.mkdir(exist_ok=True)
    imported = Database("SQLite", 0, f"sqlite:///{workdir / 'import.db'}", workdir / "import.key")
    for leftover in workdir.glob("import.*"):
        leftover.unlink()
    with context(imported):
        pass
    write_import_csv(workdir / "users.csv", 0, rows)
    profile_process(
        directory / "users-import.prof",
        cli(imported.url, imported.key, "users", "import", str(workdir / "users.csv"))[1:],
        f"users import of {rows:,} rows",
    )

    clock = FixedClock(datetime.now(UTC).replace(microsecond=0) - timedelta(days=2))
    with context(database, clock) as ctx:
        totp = pyotp.TOTP(enroll_totp(ctx, clock, CLOCK_USER))
        mfa = MfaService(ctx)
        profile = cProfile.Profile()
        for _ in range(50):
            clock.advance(seconds=30)
            code = totp.at(clock.now())
            profile.enable()
            mfa.verify(CLOCK_USER, code)
            profile.disable()
    profile.dump_stats(str(directory / "verify.prof"))
    print_profile(directory / "verify.prof", f"50 × MfaService.verify at {database.label}")


# Main --------------------------------------------------------------------------------------------


class Run:
    """One run over the backends and sizes; per size: seed, then the figures that apply."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.sizes: tuple[int, ...] = args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES)
        self.repeats: int = args.repeats or (5 if args.quick else 7)
        self.rounds: int = args.rounds or (3 if args.quick else 5)
        self.import_rows = QUICK_IMPORT_ROWS if args.quick else IMPORT_ROWS
        self.profile_dir: Path | None = args.profile
        self.workdir = workdir
        self.data_dir: Path = args.data_dir.resolve() if args.data_dir else workdir
        self.keep = args.data_dir is not None
        self.report = Report()
        self.python_pass = 0.0
        self.bare_rss_kb: float | None = None

    def step(self, title: str, database: Database | None, action: Callable[[], None]) -> None:
        say(f"  {title} …")
        began = time.perf_counter()
        try:
            action()
        except BenchError as error:
            self.report.error(f"{title}{where(database)}", str(error))
        except Exception as error:  # a bug or a broken database: say which, go on with the rest
            problem = (
                f"{error.__class__.__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            )
            self.report.error(f"{title}{where(database)}", problem)
        say(f"    done in {seconds(time.perf_counter() - began)}")

    def baseline(self) -> None:
        # An installed wheel has its bytecode compiled at install time, as Textual's is here; a
        # source checkout under PYTHONDONTWRITEBYTECODE would compile mfa_tui at every start.
        subprocess.run([PYTHON, "-m", "compileall", "-q", str(ROOT / "mfa_tui")], check=True)
        say("\npython -c pass (the baseline of figures 8 and 9)")
        runs = repeated(
            "python -c pass", lambda _: ([PYTHON, "-c", "pass"], None), self.repeats, 30
        )
        self.python_pass = median([run.seconds for run in runs])
        say(f"  {seconds(self.python_pass)}")

    def backend(self, backend: str, postgres_url: str | None) -> None:
        SMALLEST[backend] = self.sizes[0]
        measured: list[tuple[Database, UiResult]] = []
        try:
            for size in self.sizes:
                with schema_for(backend, postgres_url, size, self.keep) as schema_url:
                    if backend == "SQLite":
                        database = Database(
                            backend,
                            size,
                            f"sqlite:///{self.data_dir / f'users-{size}.db'}",
                            self.data_dir / f"users-{size}.key",
                        )
                    else:
                        key = self.data_dir / f"pg-{size}.key"
                        database = Database(backend, size, schema_url, key)
                    if self.seed(database):
                        self.size(database, measured)
        finally:
            self.ui_rows(measured)

    def ui_rows(self, measured: list[tuple[Database, UiResult]]) -> None:
        smallest = next((result for db, result in measured if db.size == self.sizes[0]), None)
        for database, result in measured:
            baseline = smallest if database.size != self.sizes[0] else None
            ui_rows(self.report, database, result, baseline, self.bare_rss_kb)

    def seed(self, database: Database) -> bool:
        say(f"\n{database.label}: seeding")
        try:
            took = seed(database)
        except Exception as error:  # BenchError, or a database that cannot be opened
            self.report.error(f"seeding {database.label}", str(error).splitlines()[0])
            return False
        if took is None:
            say(f"  reused the database seeded earlier in {self.data_dir}")
            self.report.notes.append(f"seeding {database.label}: reused (--data-dir)")
        else:
            say(f"  seeded {database.size:,} users in {seconds(took)}")
            self.report.notes.append(
                f"seeding {database.label}: {seconds(took)} ({database.size / took:,.0f} users/s)"
            )
        return True

    def size(self, database: Database, measured: list[tuple[Database, UiResult]]) -> None:
        def ui() -> None:
            ensure_admin(database)
            result = measure_ui(database, self.repeats, self.rounds)
            measured.append((database, result))
            searches = ", ".join(
                f"{query!r} {seconds(median(samples))}"
                for query, samples in result.searches.items()
            )
            say(
                f"    opened {seconds(median(result.opened))}; searches {searches}; "
                f"End {seconds(median(result.ended))}; peak RSS {megabytes(result.peak_rss_kb)}"
            )

        def start_up() -> None:
            self.bare_rss_kb = cold_start(self.report, database, self.repeats)

        report, repeats, python_pass = self.report, self.repeats, self.python_pass
        self.step("figures 1–4 (users screen, in a child process)", database, ui)
        if database.size != self.sizes[-1]:
            return
        self.step(
            "figure 8 (users list processes)",
            database,
            lambda: list_processes(report, database, repeats, python_pass),
        )
        self.step(
            "figure 6 (verify round trip)", database, lambda: verify_round_trip(report, database)
        )
        self.step(
            "figure 9 (verify processes)",
            database,
            lambda: verify_processes(report, database, repeats, python_pass),
        )
        if database.backend != "SQLite":
            return
        self.step("figure 5 (cold start processes)", database, start_up)
        self.step(
            "figure 7 (users import process)",
            None,
            lambda: import_csv(report, self.workdir / "import", self.import_rows),
        )
        if self.profile_dir is not None:
            profile_dir = self.profile_dir
            self.step(
                "profiles (extra runs)",
                database,
                lambda: profiles(profile_dir, database, repeats, self.rounds),
            )

    def print(self, began: float) -> None:
        report = self.report
        report.rows = by_figure(report.rows)
        say("\n" + "=" * 100)
        say(
            "Figure 2 is timed from table.load(UserQuery(text)), the call the debounced search "
            "makes: the 150 ms debounce is excluded."
        )
        say(
            "Figures 1–3 poll every 2 ms, then wait until the screen processed its refresh "
            "(call_after_refresh); headless, nothing is written to a terminal."
        )
        say("")
        print_table(report)
        say("")
        for note in report.notes:
            say(f"· {note}")
        missed = [row.figure.strip() for row in report.rows if row.met == "no"]
        say(f"\nmissed: {'; '.join(missed) if missed else 'none'}")
        for problem in report.errors:
            say(f"NOT MEASURED: {problem}")
        say(f"load average at end: {load_average()}")
        say(f"total time: {seconds(time.perf_counter() - began)}")


def where(database: Database | None) -> str:
    return f" · {database.label}" if database else ""


def print_table(report: Report) -> None:
    headers = Row("figure", "measured", "baseline (same run)", "ratio", "target", "met?")
    rows = [headers, *report.rows]
    widths = [max(len(cell) for cell in column) for column in zip(*map(cells, rows), strict=True)]
    for index, row in enumerate(rows):
        say("  ".join(cell.ljust(width) for cell, width in zip(cells(row), widths, strict=True)))
        if index == 0:
            say("  ".join("-" * width for width in widths))


def cells(row: Row) -> list[str]:
    return [row.figure, row.measured, row.baseline, row.ratio, row.target, row.met]


def by_figure(rows: list[Row]) -> list[Row]:
    """Stable order by figure number; a detail row without one stays under the row above it."""
    keyed = []
    number = 0
    for row in rows:
        match = re.match(r"\s*(\d+)\.", row.figure)
        number = int(match[1]) if match else number
        keyed.append((number, row))
    return [row for _, row in sorted(keyed, key=lambda pair: pair[0])]


@contextmanager
def schema_for(backend: str, base_url: str | None, size: int, keep: bool) -> Iterator[str]:
    """The URL of the PostgreSQL schema for ``size`` (nothing for SQLite)."""
    if backend != "PostgreSQL":
        yield ""
        return
    assert base_url is not None
    with postgres_schema(base_url, size, keep=keep) as url:
        yield url


def parse_sizes(value: str) -> tuple[int, ...]:
    try:
        sizes = tuple(sorted({int(part.replace("_", "")) for part in value.split(",") if part}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: give sizes like 10000,100000") from None
    if not sizes or sizes[0] < 100:
        raise argparse.ArgumentTypeError("give at least one size of 100 users or more")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Scale and speed figures of mfa-tui (issue 6).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--sizes", type=parse_sizes, help="user counts, e.g. 10000,100000,1000000")
    parser.add_argument("--postgres", help=f"PostgreSQL URL (default: ${POSTGRES_ENV})")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--repeats", type=int, help="repeats of figures 1, 3, 5, 8, 9 (7)")
    parser.add_argument("--rounds", type=int, help="rounds over the search queries (5)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="keep the seeded databases (SQLite files here, PostgreSQL schemas mfa_bench_kept_N "
        "with their keys here) and reuse them on the next run: saves the seeding",
    )
    parser.add_argument(
        "--profile", type=Path, help="also write and print profiles (extra runs) into this folder"
    )
    args = parser.parse_args(argv)
    began = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="mfa-bench-"))
    run = Run(args, workdir)

    import textual

    say(f"mfa-tui benchmarks (issue 6) · {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    say(
        f"Python {platform.python_version()} · Textual {textual.__version__} · "
        f"sizes {', '.join(f'{size:,}' for size in run.sizes)} · repeats {run.repeats} · "
        f"search rounds {run.rounds}"
    )
    say(f"load average at start: {load_average()}")
    if run.sizes[-1] != TARGET_SIZE:
        say(
            f"note: the targets are for {TARGET_SIZE:,} users; the largest size here is {run.sizes[-1]:,}"
        )

    postgres_url = None if args.no_postgres else (args.postgres or os.environ.get(POSTGRES_ENV))
    backends = ["SQLite"]
    if args.no_postgres:
        say("PostgreSQL skipped: --no-postgres")
    elif not postgres_url:
        say(f"PostgreSQL skipped: neither --postgres nor ${POSTGRES_ENV} is set")
    elif problem := postgres_problem(postgres_url):
        say(f"PostgreSQL skipped: {problem}")
    else:
        backends.append("PostgreSQL")

    run.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        run.baseline()
        for backend in backends:
            run.backend(backend, postgres_url)
    except KeyboardInterrupt:
        say("\ninterrupted: the figures measured so far follow")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    run.print(began)
    return 1 if run.report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
