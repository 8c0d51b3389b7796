"""One TOTP code sent by 20 processes at the same instant is accepted exactly once (SQLite and PostgreSQL).

Each child is a separate OS process with its own engine and connections, so nothing is shared but
the database: the only thing that can stop a second acceptance is the conditional UPDATE.

The children come from the "forkserver" start method: a fresh interpreter (started like "spawn",
inheriting nothing from pytest: no connections, no threads) imports this module once, and each
child is forked from it. Plain "spawn" would import SQLAlchemy, SQLModel and Alembic twenty times
over, which takes most of a minute on two cores.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from urllib.parse import parse_qs, urlparse

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
from tests.helpers.processes import run_at_once

PROCESSES = 20

pytestmark = pytest.mark.slow

# The children are forked from a server process that imported this module once (see
# set_forkserver_preload below), so warm what every open_context needs: the compiled migrations.
schema.head_revision()


def verify_in_child(
    database_url: str,
    key_file: str,
    unix_time: float,
    code: str,
    barrier: Barrier,
    results: Queue[tuple[str, str | None]],
) -> None:
    """Runs in a child process: open a context of its own, wait for the others, verify once."""
    try:
        context = open_context(
            Config(database_url=database_url, key_file=Path(key_file)),
            FixedClock(datetime.fromtimestamp(unix_time, UTC)),
        )
    except BaseException as error:
        barrier.abort()
        results.put(("error", repr(error)))
        raise
    try:
        barrier.wait(60)
        outcome = MfaService(context).verify("bob", code)
        results.put((outcome.reason, outcome.method))
    except BaseException as error:
        results.put(("error", repr(error)))
        raise
    finally:
        context.close()


def test_the_same_code_from_twenty_processes_is_accepted_once(
    ctx: Context, config: Config, clock: FixedClock, cli_actor: Actor
) -> None:
    # Only replay is under test: give the refused processes room before the lockout.
    SettingsStore(ctx).set_many(cli_actor, {"lockout.attempts": "100"})
    UserService(ctx).create(cli_actor, "bob")
    service = MfaService(ctx)
    start = service.begin_enrollment(cli_actor, "bob", "totp")
    assert start.provisioning_uri is not None
    encoded = parse_qs(urlparse(start.provisioning_uri).query)["secret"][0]
    secret = base64.b32decode(encoded + "=" * (-len(encoded) % 8))
    params = otp.TotpParameters()
    assert service.confirm_code(
        cli_actor, start.credential_id, otp.code_at(secret, clock.now().timestamp(), params)
    )
    service.activate(cli_actor, "bob", start.credential_id)
    clock.advance(seconds=30)
    moment = clock.now().timestamp()
    code = otp.code_at(secret, moment, params)

    outcomes = run_at_once(
        __name__,
        verify_in_child,
        [(config.database_url, str(config.key_file), moment, code)] * PROCESSES,
    )

    assert [o for o in outcomes if o[0] == "error"] == []
    assert outcomes.count(("accepted", "totp")) == 1
    assert outcomes.count(("wrong_code", None)) == PROCESSES - 1
    with ctx.db.read() as session:
        accepted = [e for e in list_events(session) if e.action == "verify.accepted"]
        assert ctx.audit.verify(session).ok  # 20 concurrent appends, one unbroken chain
    assert len(accepted) == 1
    # The step is spent for this process too.
    assert not service.verify("bob", code).accepted
