"""Second-factor lockout on both databases: the limit, expiry, doubling, staff unlock, parallel guessers."""

from __future__ import annotations

import base64
import threading
from urllib.parse import parse_qs, urlparse

import pytest

from mfa_tui.core import otp
from mfa_tui.core.access import Actor
from mfa_tui.core.audit import list_events
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.services.mfa import MfaService, VerifyOutcome
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import UserService

PARAMS = otp.TotpParameters()


@pytest.fixture
def secret(ctx: Context, clock: FixedClock, cli_actor: Actor) -> bytes:
    """bob with a configured authenticator; returns its raw secret."""
    UserService(ctx).create(cli_actor, "bob")
    service = MfaService(ctx)
    start = service.begin_enrollment(cli_actor, "bob", "totp")
    assert start.provisioning_uri is not None
    encoded = parse_qs(urlparse(start.provisioning_uri).query)["secret"][0]
    raw = base64.b32decode(encoded + "=" * (-len(encoded) % 8))
    assert service.confirm_code(cli_actor, start.credential_id, _code(raw, clock))
    service.activate(cli_actor, "bob", start.credential_id)
    return raw


def _code(secret: bytes, clock: FixedClock) -> str:
    return otp.code_at(secret, clock.now().timestamp(), PARAMS)


def _wrong(secret: bytes, clock: FixedClock) -> str:
    now = clock.now().timestamp()
    window = {otp.code_at(secret, now + 30 * shift, PARAMS) for shift in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in window)


def _fresh_code(secret: bytes, clock: FixedClock) -> str:
    """A code for a time-step not used before (each accepted step is spent)."""
    clock.advance(seconds=30)
    return _code(secret, clock)


def _fail(ctx: Context, secret: bytes, clock: FixedClock, times: int) -> list[VerifyOutcome]:
    return [MfaService(ctx).verify("bob", _wrong(secret, clock)) for _ in range(times)]


def _refusals(ctx: Context, reason: str) -> int:
    with ctx.db.read() as session:
        return sum(
            1
            for event in list_events(session, text="verify.refused")
            if event.action == "verify.refused" and event.details.get("reason") == reason
        )


def _locked(ctx: Context) -> bool:
    return UserService(ctx).get("bob").locked


def test_five_wrong_codes_lock_even_the_right_code_out(
    ctx: Context, clock: FixedClock, secret: bytes
) -> None:
    outcomes = _fail(ctx, secret, clock, 5)

    assert [o.reason for o in outcomes] == ["wrong_code"] * 5
    assert _locked(ctx)
    sixth = MfaService(ctx).verify("bob", _fresh_code(secret, clock))
    assert (sixth.accepted, sixth.reason) == (False, "locked")
    assert "locked" in sixth.message
    assert _refusals(ctx, "locked") == 1


def test_the_lock_expires_then_doubles_on_the_next_consecutive_lock(
    ctx: Context, clock: FixedClock, secret: bytes
) -> None:
    service = MfaService(ctx)
    _fail(ctx, secret, clock, 5)

    clock.advance(minutes=14, seconds=30)
    assert service.verify("bob", _code(secret, clock)).reason == "locked"
    clock.advance(seconds=30)  # 15 minutes after the lock
    assert not _locked(ctx)

    # No success in between: the next lock is consecutive and lasts 30 minutes.
    assert [o.reason for o in _fail(ctx, secret, clock, 5)] == ["wrong_code"] * 5
    assert _locked(ctx)
    clock.advance(minutes=29, seconds=30)
    assert service.verify("bob", _code(secret, clock)).reason == "locked"
    clock.advance(seconds=30)
    assert not _locked(ctx)
    assert service.verify("bob", _code(secret, clock)).accepted

    # The success reset the streak: the next lock is back to 15 minutes.
    _fail(ctx, secret, clock, 5)
    clock.advance(minutes=15)
    assert service.verify("bob", _fresh_code(secret, clock)).accepted


def test_lock_duration_follows_the_setting(
    ctx: Context, clock: FixedClock, cli_actor: Actor, secret: bytes
) -> None:
    SettingsStore(ctx).set_many(cli_actor, {"lockout.minutes": "2", "lockout.attempts": "3"})
    assert [o.reason for o in _fail(ctx, secret, clock, 4)] == ["wrong_code"] * 3 + ["locked"]
    clock.advance(minutes=1, seconds=30)
    assert _locked(ctx)
    clock.advance(seconds=30)
    assert MfaService(ctx).verify("bob", _code(secret, clock)).accepted


def test_zero_minutes_locks_until_staff_unlock(
    ctx: Context, clock: FixedClock, cli_actor: Actor, secret: bytes
) -> None:
    SettingsStore(ctx).set_many(cli_actor, {"lockout.minutes": "0"})
    service = MfaService(ctx)
    _fail(ctx, secret, clock, 5)

    clock.advance(days=400)
    assert _locked(ctx)
    assert service.verify("bob", _code(secret, clock)).reason == "locked"

    assert service.unlock(cli_actor, "bob") is True
    assert not _locked(ctx)
    assert service.verify("bob", _code(secret, clock)).accepted


def test_unlock_clears_the_lock_and_the_counter(
    ctx: Context, clock: FixedClock, cli_actor: Actor, secret: bytes
) -> None:
    service = MfaService(ctx)
    assert service.unlock(cli_actor, "bob") is False  # nothing to unlock
    _fail(ctx, secret, clock, 5)

    assert service.unlock(cli_actor, "bob") is True

    assert not _locked(ctx)
    # A full budget again: four more failures do not lock.
    _fail(ctx, secret, clock, 4)
    assert not _locked(ctx)
    with ctx.db.read() as session:
        unlocks = [e for e in list_events(session, text="user.unlock") if e.action == "user.unlock"]
    assert [(e.actor, e.target) for e in unlocks] == [(cli_actor.name, "bob")]


def test_a_success_resets_the_counter(ctx: Context, clock: FixedClock, secret: bytes) -> None:
    service = MfaService(ctx)
    _fail(ctx, secret, clock, 4)
    assert not _locked(ctx)  # four is one short of the limit
    assert service.verify("bob", _fresh_code(secret, clock)).accepted
    _fail(ctx, secret, clock, 4)  # eight failures in all, never five in a row

    assert not _locked(ctx)
    assert service.verify("bob", _fresh_code(secret, clock)).accepted


def test_a_backup_code_counts_as_a_success_and_a_wrong_one_as_a_failure(
    ctx: Context, clock: FixedClock, cli_actor: Actor, secret: bytes
) -> None:
    service = MfaService(ctx)
    codes = service.generate_backup_codes(cli_actor, "bob")
    _fail(ctx, secret, clock, 4)
    assert service.verify("bob", codes[0]).accepted
    outcomes = [service.verify("bob", "ZZZZ-ZZZZ-ZZZZ") for _ in range(5)]
    assert [o.reason for o in outcomes] == ["wrong_code"] * 5
    assert service.verify("bob", codes[1]).reason == "locked"


def test_parallel_guessers_share_one_budget(ctx: Context, clock: FixedClock, secret: bytes) -> None:
    wrong = _wrong(secret, clock)
    start = threading.Barrier(8)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def guess() -> None:
        try:
            start.wait(10)
            for _ in range(3):
                outcomes.append(MfaService(ctx).verify("bob", wrong).reason)
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=guess) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert len(outcomes) == 24
    checked = _refusals(ctx, "wrong_code")
    assert checked <= 5
    assert checked == outcomes.count("wrong_code") == 5
    assert outcomes.count("locked") == 19 == _refusals(ctx, "locked")
    assert _locked(ctx)
