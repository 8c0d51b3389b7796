"""The MFA policy at login (SPEC §2): what AuthService asks of each user after the password.

``next_step`` decides between done, a second factor, enrollment and an expired setup;
``after_second_factor`` takes a user who proved a working factor into a pending enrollment.
Both databases; the clock is frozen and moved by hand.
"""

from __future__ import annotations

import pyotp
import pytest

from mfa_tui.core.access import Actor
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.services.auth import AuthService, NextStep
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import UserService

DONE = NextStep("done")


def add(ctx: Context, name: str, mfa_type: str = "none") -> int:
    return UserService(ctx).create(Actor.cli(), name, mfa_type=mfa_type).id


def configure(ctx: Context, clock: FixedClock, name: str, actor: Actor | None = None) -> pyotp.TOTP:
    """A working authenticator for ``name``; the clock then moves to the next time-step."""
    actor = actor or Actor.cli()
    service = MfaService(ctx)
    start = service.begin_enrollment(actor, name, "totp")
    assert start.provisioning_uri is not None
    totp = pyotp.parse_uri(start.provisioning_uri)
    assert service.confirm_code(actor, start.credential_id, totp.at(clock.now()))
    service.activate(actor, name, start.credential_id)
    clock.advance(seconds=30)
    return totp


def settings(ctx: Context, **values: str) -> None:
    SettingsStore(ctx).set_many(
        Actor.cli(), {key.replace("_", ".", 1): value for key, value in values.items()}
    )


@pytest.fixture
def auth(ctx: Context) -> AuthService:
    return AuthService(ctx)


def test_optional_per_user_asks_only_users_with_a_type(
    ctx: Context, clock: FixedClock, auth: AuthService
) -> None:
    nora = add(ctx, "nora")
    tom = add(ctx, "tom")
    configure(ctx, clock, "tom")
    pat = add(ctx, "pat", "totp")  # configure later by user

    assert SettingsStore(ctx).load().usage == "optional"
    assert auth.next_step(nora) == DONE
    assert auth.next_step(tom) == NextStep("second_factor", "totp")
    assert auth.next_step(pat) == NextStep("enroll", "totp")


def test_required_sends_a_user_with_type_none_to_enroll_in_the_default_type(
    ctx: Context, clock: FixedClock, auth: AuthService
) -> None:
    nora = add(ctx, "nora")
    settings(ctx, mfa_usage="required", mfa_default_type="totp")

    assert auth.next_step(nora) == NextStep("enroll", "totp")
    view = UserService(ctx).get("nora")
    assert (view.mfa_type, view.mfa_status) == ("totp", "pending")
    assert (view.stored_mfa_type, view.stored_mfa_status) == ("none", "none")

    # Enrolling herself needs no step-up (she has no factor yet) and stores the type for good.
    me = Actor(name="nora", role="user", user_id=nora)
    configure(ctx, clock, "nora", me)
    view = UserService(ctx).get("nora")
    assert (view.stored_mfa_type, view.stored_mfa_status) == ("totp", "configured")
    assert auth.next_step(nora) == NextStep("second_factor", "totp")

    # Back to Optional: a user still without a type is no longer asked.
    other = add(ctx, "omar")
    assert auth.next_step(other) == NextStep("enroll", "totp")
    settings(ctx, mfa_usage="optional")
    assert auth.next_step(other) == DONE


def test_skipped_asks_nobody_even_a_user_with_a_working_factor(
    ctx: Context, clock: FixedClock, auth: AuthService
) -> None:
    tom = add(ctx, "tom")
    totp = configure(ctx, clock, "tom")
    pat = add(ctx, "pat", "totp")
    settings(ctx, mfa_usage="skipped")

    assert auth.next_step(tom) == DONE
    assert auth.next_step(pat) == DONE
    outcome = MfaService(ctx).verify("tom", "not a code")
    assert (outcome.accepted, outcome.reason) == (True, "not_required")
    # The factor is kept, not removed: back to Optional, it is asked for again.
    settings(ctx, mfa_usage="optional")
    assert auth.next_step(tom) == NextStep("second_factor", "totp")
    assert MfaService(ctx).verify("tom", totp.at(clock.now())).accepted


def test_pending_expires_after_the_set_days_and_staff_renew_it(
    ctx: Context, clock: FixedClock, auth: AuthService
) -> None:
    pat = add(ctx, "pat", "totp")
    assert SettingsStore(ctx).load()["mfa.pending_expiry_days"] == 7

    clock.advance(days=7, seconds=-1)
    assert auth.next_step(pat) == NextStep("enroll", "totp")
    clock.advance(seconds=1)
    assert auth.next_step(pat) == NextStep("expired", "totp")
    assert auth.after_second_factor(pat) == DONE  # an expired setup is never entered

    # Staff renew it (set the type, configure later): the days count again from now.
    MfaService(ctx).set_type(Actor.cli(), "pat", "totp", configure_later=True)
    assert auth.next_step(pat) == NextStep("enroll", "totp")
    clock.advance(days=6)
    assert auth.next_step(pat) == NextStep("enroll", "totp")

    # The setting is read at login: shortening it expires setups already pending; 0 = never.
    settings(ctx, mfa_pending_expiry_days="5")
    assert auth.next_step(pat) == NextStep("expired", "totp")
    settings(ctx, mfa_pending_expiry_days="0")
    clock.advance(days=365)
    assert auth.next_step(pat) == NextStep("enroll", "totp")


def test_a_pending_user_with_a_working_factor_proves_it_before_enrolling(
    ctx: Context, clock: FixedClock, auth: AuthService
) -> None:
    tom = add(ctx, "tom")
    old = configure(ctx, clock, "tom")
    MfaService(ctx).set_type(Actor.cli(), "tom", "totp", configure_later=True)

    # The password alone never leads past a working factor.
    assert auth.next_step(tom) == NextStep("second_factor", "totp")
    assert MfaService(ctx).verify("tom", old.at(clock.now())).accepted
    assert auth.after_second_factor(tom) == NextStep("enroll", "totp")

    # A lapsed setup does not lock him out: he keeps logging in with the factor he has.
    clock.advance(days=8)
    assert auth.next_step(tom) == NextStep("second_factor", "totp")
    assert auth.after_second_factor(tom) == DONE


def test_the_old_factor_stays_active_until_the_new_one_is_verified(
    ctx: Context, clock: FixedClock
) -> None:
    tom = add(ctx, "tom")
    old = configure(ctx, clock, "tom")
    MfaService(ctx).set_type(Actor.cli(), "tom", "totp", configure_later=True)
    service = MfaService(ctx)
    me = Actor(name="tom", role="user", user_id=tom, proved_at=clock.now())

    start = service.begin_enrollment(me, "tom", "totp")
    assert start.provisioning_uri is not None
    new = pyotp.parse_uri(start.provisioning_uri)
    assert not service.verify("tom", new.at(clock.now())).accepted  # not before it is proven
    clock.advance(seconds=30)
    assert service.verify("tom", old.at(clock.now())).accepted

    clock.advance(seconds=30)
    assert service.confirm_code(me, start.credential_id, new.at(clock.now()))
    clock.advance(seconds=30)
    assert service.verify("tom", old.at(clock.now())).accepted  # proven, but not yet saved
    assert UserService(ctx).get("tom").mfa_status == "pending"

    service.activate(me, "tom", start.credential_id)
    clock.advance(seconds=30)
    assert not service.verify("tom", old.at(clock.now())).accepted
    assert service.verify("tom", new.at(clock.now())).accepted
    assert UserService(ctx).get("tom").mfa_status == "configured"
