"""Four consoles at once: real processes running mixed operations on one shared set of users.

Each child opens its own context (engine, connections, key) on the test's database, as a second
console would, waits for the others at a barrier, then runs ``MFA_TUI_TEST_SOAK_OPS`` operations
(default 150; ``benchmarks/soak.py`` runs 1,000) chosen by a seeded random generator: General edits
through User edit's Update, configure-now enrollments (begin, confirm a code, activate), second-
factor verifications, resets, unlocks and "configure later" — by an administrator and by a
helpdesk agent — on the same six users.

What may happen: a stale edit is refused with ``ConflictError`` (re-read and retried, counted), an
enrollment is superseded by another console's (``NotFound`` / "cancelled or replaced", counted),
a code is refused (wrong, spent, locked, not enrolled). Anything else is an error and fails the
test. Afterwards no accepted edit is lost: per user, the audited edits form one unbroken chain
(each edit's "before" is the previous edit's "after"), the last one is what the database holds,
and every edit a console was told was saved is in it exactly once. The audit chain verifies.
"""

from __future__ import annotations

import base64
import os
import random
import time
from collections import Counter
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from sqlmodel import select

from mfa_tui.core import otp, schema
from mfa_tui.core.access import Actor
from mfa_tui.core.audit import list_events
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.config import Config
from mfa_tui.core.context import Context, open_context
from mfa_tui.core.errors import ConflictError, InputError, NotFound
from mfa_tui.core.kinds import CredentialState
from mfa_tui.core.models import MfaCredential, Role
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.user_edit import save_user_edit
from mfa_tui.core.services.users import GeneralFields, UserService
from tests.helpers.processes import run_at_once

CONSOLES = 4
OPS_ENV = "MFA_TUI_TEST_SOAK_OPS"
USERS = [f"user{n}" for n in range(6)]
EDIT_RETRIES = 50
REFUSED_CODES = {"wrong_code", "locked", "not_enrolled"}
OPERATIONS = ["edit", "edit", "enroll", "verify", "verify", "reset", "unlock", "configure_later"]

pytestmark = pytest.mark.slow

schema.head_revision()  # warm the compiled migrations once, in the forkserver (see processes.py)


def ops_per_console() -> int:
    return int(os.environ.get(OPS_ENV) or 150)


def secret_of(uri: str | None) -> bytes:
    assert uri is not None
    encoded = parse_qs(urlparse(uri).query)["secret"][0]
    return base64.b32decode(encoded + "=" * (-len(encoded) % 8))


def code(secret: bytes, clock: FixedClock) -> str:
    return otp.code_at(secret, clock.now().timestamp(), otp.TotpParameters())


class Console:
    """One child's operations; ``counts`` and ``edits`` are what it reports to the parent."""

    def __init__(self, ctx: Context, clock: FixedClock, number: int, secrets: dict[str, bytes]):
        self.ctx, self.clock, self.number = ctx, clock, number
        self.secrets = dict(secrets)  # the last secret this console saw activated, per user
        self.users, self.mfa = UserService(ctx), MfaService(ctx)
        root, helen = self.users.get("root"), self.users.get("helen")
        self.admin = Actor(root.username, root.role, root.id)
        self.helpdesk = Actor(helen.username, helen.role, helen.id)
        self.counts: Counter[str] = Counter()
        self.edits: list[tuple[str, str]] = []  # (username, display name) saved
        self.errors: list[str] = []

    def staff(self, rng: random.Random) -> Actor:
        return rng.choice([self.admin, self.helpdesk])

    def run(self, operations: int, rng: random.Random) -> None:
        for step in range(operations):
            self.clock.advance(seconds=30)  # a fresh time-step for every code
            name, kind = rng.choice(USERS), rng.choice(OPERATIONS)
            try:
                getattr(self, kind)(rng, name, f"c{self.number}-{step}")
                self.counts[kind] += 1
            except Exception as error:  # anything unexpected is a finding, reported in full
                self.errors.append(f"{kind} {name}: {type(error).__name__}: {error}")

    def edit(self, rng: random.Random, name: str, tag: str) -> None:
        actor = self.staff(rng)
        for _ in range(EDIT_RETRIES):
            seen = self.users.get(name)
            try:
                save_user_edit(
                    self.ctx, actor, seen.id, seen.version, GeneralFields(display_name=tag), None
                )
            except ConflictError as conflict:
                assert "reload" in str(conflict)
                self.counts["conflicts retried"] += 1
                continue
            self.edits.append((name, tag))
            return
        raise AssertionError(f"edit {tag} of {name} still conflicting after {EDIT_RETRIES} tries")

    def enroll(self, rng: random.Random, name: str, tag: str) -> None:
        actor = self.staff(rng)
        start = self.mfa.begin_enrollment(actor, name, "totp")
        secret = secret_of(start.provisioning_uri)
        try:
            if not self.mfa.confirm_code(actor, start.credential_id, code(secret, self.clock)):
                # Refused only if another console replaced it meanwhile: then this raises NotFound.
                self.mfa.enrollment_view(actor, start.credential_id)
                raise AssertionError(f"the right code for {name}'s new secret was refused")
            self.mfa.activate(actor, name, start.credential_id)
        except NotFound:
            self.counts["enrollments superseded"] += 1
            return
        except InputError as replaced:
            assert "cancelled or replaced" in str(replaced), replaced
            self.counts["enrollments superseded"] += 1
            return
        self.secrets[name] = secret

    def verify(self, rng: random.Random, name: str, tag: str) -> None:
        secret = self.secrets.get(name)
        outcome = self.mfa.verify(name, code(secret, self.clock) if secret else "000000")
        assert outcome.accepted or outcome.reason in REFUSED_CODES, outcome
        self.counts["codes accepted" if outcome.accepted else "codes refused"] += 1

    def reset(self, rng: random.Random, name: str, tag: str) -> None:
        self.mfa.reset(self.admin, name, override_reason=f"soak {tag}")

    def unlock(self, rng: random.Random, name: str, tag: str) -> None:
        self.mfa.unlock(self.staff(rng), name)

    def configure_later(self, rng: random.Random, name: str, tag: str) -> None:
        self.mfa.set_type(self.staff(rng), name, "totp", configure_later=True)


def console_in_child(
    database_url: str,
    key_file: str,
    unix_time: float,
    number: int,
    operations: int,
    secrets: dict[str, bytes],
    barrier: Barrier,
    results: Queue[dict[str, Any]],
) -> None:
    try:
        clock = FixedClock(datetime.fromtimestamp(unix_time, UTC))
        context = open_context(Config(database_url=database_url, key_file=Path(key_file)), clock)
        console = Console(context, clock, number, secrets)
    except BaseException as error:
        barrier.abort()
        results.put({"errors": [repr(error)]})
        raise
    try:
        barrier.wait(60)
        started = time.perf_counter()
        console.run(operations, random.Random(number))
        results.put(
            {
                "seconds": time.perf_counter() - started,
                "counts": dict(console.counts),
                "edits": console.edits,
                "errors": console.errors,
            }
        )
    except BaseException as error:
        results.put({"errors": [repr(error)]})
        raise
    finally:
        context.close()


def enroll_everyone(ctx: Context, clock: FixedClock, actor: Actor) -> dict[str, bytes]:
    service = MfaService(ctx)
    secrets: dict[str, bytes] = {}
    for name in USERS:
        UserService(ctx).create(actor, name, email=f"{name}@example.com")
        start = service.begin_enrollment(actor, name, "totp")
        secrets[name] = secret_of(start.provisioning_uri)
        assert service.confirm_code(actor, start.credential_id, code(secrets[name], clock))
        service.activate(actor, name, start.credential_id)
    return secrets


def test_four_consoles_with_mixed_operations_lose_nothing(
    ctx: Context, config: Config, clock: FixedClock, cli_actor: Actor, db_url: str
) -> None:
    users = UserService(ctx)
    users.create(cli_actor, "root", role=Role.ADMIN)
    users.create(cli_actor, "helen", role=Role.HELPDESK)
    SettingsStore(ctx).set_many(cli_actor, {"lockout.attempts": "100"})
    secrets = enroll_everyone(ctx, clock, cli_actor)
    operations = ops_per_console()

    started = time.perf_counter()
    reports = run_at_once(
        __name__,
        console_in_child,
        [
            (
                config.database_url,
                str(config.key_file),
                clock.now().timestamp(),
                number,
                operations,
                secrets,
            )
            for number in range(CONSOLES)
        ],
        timeout=90 + operations * 0.5,
    )
    wall = time.perf_counter() - started

    assert [error for report in reports for error in report["errors"]] == []
    totals: Counter[str] = Counter()
    for report in reports:
        totals.update(report["counts"])
    done = sum(totals[kind] for kind in set(OPERATIONS))
    assert done == CONSOLES * operations
    saved = Counter(edit for report in reports for edit in report["edits"])
    assert saved and max(saved.values()) == 1  # tags are unique: each edit saved once

    with ctx.db.read() as session:
        chain = ctx.audit.verify(session)
        events = list_events(session)
        active = session.exec(
            select(MfaCredential.user_id).where(MfaCredential.state == CredentialState.ACTIVE)
        ).all()
    assert chain.ok, chain.problem
    edits = sorted((e for e in events if e.action == "user.update"), key=lambda e: e.seq)
    audited: list[tuple[str, str]] = []
    for name in USERS:
        chain_of_edits = [e for e in edits if e.target == name]
        shown = None
        for event in chain_of_edits:
            # A lost update would show two edits that both started from the same value.
            assert event.details["before"]["display_name"] == shown, (name, event.seq)
            shown = event.details["after"]["display_name"]
            audited.append((name, shown))
        assert users.get(name).display_name == shown
    assert Counter(audited) == saved
    assert len(active) == len(set(active))  # never two working factors for one user

    print(
        f"\nsoak on {db_url.split(':')[0]}: {CONSOLES} consoles x {operations} operations in "
        f"{wall:.1f} s ({CONSOLES * operations / wall:.0f} ops/s); "
        + ", ".join(f"{kind} {count}" for kind, count in sorted(totals.items()))
        + f"; audit rows {chain.count}, chain intact; errors 0"
    )
