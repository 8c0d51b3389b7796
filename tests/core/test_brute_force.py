"""Brute force across processes: with lockout at 5, parallel guessers get 5 guesses per lock period.

Each attacker is a separate OS process (forked from a forkserver, as in
``test_replay_concurrency``) with its own engine, firing wrong codes as fast as it can. Only the
conditional UPDATE that reserves an attempt before a code is checked stands between them and more
guesses. Three rounds: the first lock period, the next one after the lock ran out (a fresh
budget of 5, and a lock twice as long), and a round inside that doubled lock (no guess at all).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from mfa_tui.core import otp, schema
from mfa_tui.core.access import Actor
from mfa_tui.core.audit import list_events
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.config import Config
from mfa_tui.core.context import Context, open_context
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import UserService
from tests.core.test_mfa_service import PARAMS, enroll
from tests.helpers.processes import run_at_once

PROCESSES = 6
GUESSES_EACH = 10
ATTEMPTS = 5
LOCK_MINUTES = 15

pytestmark = pytest.mark.slow

schema.head_revision()  # warm the forkserver (see test_replay_concurrency)


def guess_in_child(
    database_url: str,
    key_file: str,
    unix_time: float,
    codes: list[str],
    barrier: Barrier,
    results: Queue[list[str]],
) -> None:
    """One attacker: open a context, wait for the others, then try every code back to back."""
    try:
        context = open_context(
            Config(database_url=database_url, key_file=Path(key_file)),
            FixedClock(datetime.fromtimestamp(unix_time, UTC)),
        )
    except BaseException as error:
        barrier.abort()
        results.put([f"error {error!r}"])
        raise
    try:
        barrier.wait(60)
        service = MfaService(context)
        results.put([service.verify("bob", code).reason for code in codes])
    except BaseException as error:
        results.put([f"error {error!r}"])
        raise
    finally:
        context.close()


def attack(config: Config, moment: datetime, codes: list[str]) -> Counter[str]:
    """PROCESSES attackers at once, each with its own slice of codes; the outcomes counted."""
    answers = run_at_once(
        __name__,
        guess_in_child,
        [
            (
                config.database_url,
                str(config.key_file),
                moment.timestamp(),
                codes[index::PROCESSES],
            )
            for index in range(PROCESSES)
        ],
    )
    outcomes: Counter[str] = Counter()
    for answer in answers:
        outcomes.update(answer)
    return outcomes


def refused_reasons(ctx: Context) -> Counter[str]:
    with ctx.db.read() as session:
        return Counter(
            e.details.get("reason") for e in list_events(session) if e.action == "verify.refused"
        )


def test_parallel_guessers_get_five_guesses_per_lock_period(
    ctx: Context, config: Config, clock: FixedClock, cli_actor: Actor
) -> None:
    SettingsStore(ctx).set_many(
        cli_actor, {"lockout.attempts": str(ATTEMPTS), "lockout.minutes": str(LOCK_MINUTES)}
    )
    UserService(ctx).create(cli_actor, "bob")
    secret = enroll(ctx, clock, cli_actor, "bob")
    start = clock.now() + timedelta(minutes=1)

    def wrong_codes(moment: datetime) -> list[str]:
        # Six-digit codes that match no step in the drift window at that moment.
        window = {
            otp.code_at(secret, moment.timestamp() + 30 * shift, PARAMS) for shift in (-1, 0, 1)
        }
        candidates = (f"{n:06d}" for n in range(100_000, 999_999, 7919))
        return [c for c in candidates if c not in window][: PROCESSES * GUESSES_EACH]

    rounds = [
        ("first lock period", start, ATTEMPTS),
        # The lock ran out: a fresh budget of five, and the next lock lasts twice as long.
        ("after the lock ran out", start + timedelta(minutes=LOCK_MINUTES + 1), ATTEMPTS),
        # Inside the doubled lock (30 minutes from the second round): not one guess is checked.
        ("inside the doubled lock", start + timedelta(minutes=2 * LOCK_MINUTES + 2), 0),
    ]
    figures = []
    for name, moment, allowed in rounds:
        before = refused_reasons(ctx)
        outcomes = attack(config, moment, wrong_codes(moment))
        checked = outcomes["wrong_code"] + outcomes["accepted"]
        assert outcomes["accepted"] == 0, name
        assert checked == allowed, (name, outcomes)
        assert outcomes["locked"] == PROCESSES * GUESSES_EACH - allowed, (name, outcomes)
        # The audit log agrees: each checked guess and each refusal-as-locked is recorded.
        audited = refused_reasons(ctx) - before
        assert audited == Counter(
            {k: v for k, v in {"wrong_code": allowed, "locked": outcomes["locked"]}.items() if v}
        ), name
        figures.append(f"{name}: {checked} checked, {outcomes['locked']} refused as locked")
    with ctx.db.read() as session:
        assert ctx.audit.verify(session).ok
    print(
        f"\nbrute force: {PROCESSES} processes x {GUESSES_EACH} guesses per round; "
        + "; ".join(figures)
    )
