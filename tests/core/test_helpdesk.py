"""Helpdesk walkthrough in the services: verify the caller, the reset that needs it, temporary
access passes and enrollment invitations — on SQLite and PostgreSQL, with a real SMTP server."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
from sqlmodel import select

from mfa_tui.core.access import Actor
from mfa_tui.core.audit import list_events
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.errors import InputError, MfaTuiError, PermissionDenied, Refused
from mfa_tui.core.models import AccessPass, MfaCredential, MfaStatus
from mfa_tui.core.services.access_pass import AccessPasses
from mfa_tui.core.services.auth import AuthService
from mfa_tui.core.services.caller_check import CallerCheck
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import GeneralFields, UserService
from tests.helpers.smtp_server import SmtpServer
from tests.ui.conftest import (
    PASSWORD,
    add_user,
    cheap_password_hashing,  # noqa: F401 - an autouse fixture, active here too
    enroll_totp,
    lockout_row,
    user_row,
)

NEW_PASSWORD = "Brand-New-Secret-77"


def staff(ctx: Context, name: str, role: str) -> Actor:
    view = add_user(ctx, name, role=role)
    return Actor(name=name, role=role, user_id=view.id)


@pytest.fixture
def agents(ctx: Context) -> tuple[Actor, Actor]:
    return staff(ctx, "hd", "helpdesk"), staff(ctx, "root", "admin")


def events(ctx: Context, prefix: str) -> list[tuple[str, str, str | None, dict[str, object]]]:
    with ctx.db.read() as session:
        return [
            (e.actor, e.action, e.target, e.details)
            for e in reversed(list_events(session))
            if e.action.startswith(prefix)
        ]


def test_the_caller_reads_a_totp_code_once_and_the_agent_sees_verified(
    ctx: Context, clock: FixedClock, agents: tuple[Actor, Actor]
) -> None:
    helpdesk, _ = agents
    add_user(ctx, "bob")
    secret = enroll_totp(ctx, clock, "bob")
    check = CallerCheck(ctx)
    assert not check.status(helpdesk, "bob").verified
    code = pyotp.TOTP(secret).at(clock.now())

    result = check.check(helpdesk, "bob", code, "factor")
    assert result.status.verified and result.message.startswith("Caller verified at 15:09")
    # The same time-step is spent, as at a login: read aloud twice, it proves nothing more.
    again = check.check(helpdesk, "bob", code, "factor")
    assert not again.status.verified and again.message.startswith("Not verified")
    assert check.status(helpdesk, "bob").verified
    assert ("hd", "caller.verified", "bob", {"method": "factor"}) in events(ctx, "caller.")
    # Fifteen minutes later the verification has lapsed.
    clock.advance(seconds=15 * 60 + 1)
    assert not check.status(helpdesk, "bob").verified


def test_wrong_codes_from_the_caller_count_toward_the_lockout(
    ctx: Context, clock: FixedClock, agents: tuple[Actor, Actor]
) -> None:
    helpdesk, _ = agents
    SettingsStore(ctx).set_many(Actor.cli(), {"lockout.attempts": "2"})
    add_user(ctx, "bob")
    secret = enroll_totp(ctx, clock, "bob")
    check = CallerCheck(ctx)
    for _ in range(2):
        assert not check.check(helpdesk, "bob", "000000", "factor").status.verified
    row = lockout_row(ctx, "bob")
    assert row is not None and row.locked_at is not None
    result = check.check(helpdesk, "bob", pyotp.TOTP(secret).at(clock.now()), "factor")
    assert not result.status.verified and "locked" in result.message


def test_a_backup_code_read_aloud_is_consumed_and_a_factor_code_is_not_one(
    ctx: Context, clock: FixedClock, agents: tuple[Actor, Actor]
) -> None:
    helpdesk, _ = agents
    add_user(ctx, "bob")
    secret = enroll_totp(ctx, clock, "bob")
    codes = MfaService(ctx).generate_backup_codes(Actor.cli(), "bob")
    check = CallerCheck(ctx)
    # Asked for a backup code, the caller's TOTP code does not count.
    assert not check.check(
        helpdesk, "bob", pyotp.TOTP(secret).at(clock.now()), "backup_code"
    ).status.verified
    assert check.check(helpdesk, "bob", codes[0], "backup_code").status.verified
    assert not check.check(helpdesk, "bob", codes[0], "backup_code").status.verified
    assert MfaService(ctx).backup_codes_left("bob") == len(codes) - 1


def test_a_caller_who_lost_the_factor_gets_a_code_at_the_registered_address(
    ctx: Context, clock: FixedClock, agents: tuple[Actor, Actor], smtp: SmtpServer
) -> None:
    helpdesk, _ = agents
    SettingsStore(ctx).set_many(Actor.cli(), smtp.settings())
    add_user(ctx, "bob", email="bob@example.com")
    enroll_totp(ctx, clock, "bob")
    check = CallerCheck(ctx)
    said = check.send_lost_code(helpdesk, "bob")
    assert said.startswith("A 6-digit code was sent to bo…@example.com")
    [mail] = smtp.wait_for(1)
    assert mail.recipients == ["bob@example.com"]
    # The code is for this check only: it never logs bob in.
    assert MfaService(ctx).verify("bob", mail.code).reason == "wrong_code"
    status = check.check(helpdesk, "bob", mail.code, "lost_code").status
    assert status.verified and status.method == "lost_code"
    assert not check.check(helpdesk, "bob", mail.code, "lost_code").status.verified


def test_helpdesk_reset_needs_a_caller_verified_by_that_agent(
    ctx: Context, clock: FixedClock, agents: tuple[Actor, Actor]
) -> None:
    helpdesk, _ = agents
    other = staff(ctx, "hd2", "helpdesk")
    add_user(ctx, "bob")
    secret = enroll_totp(ctx, clock, "bob")
    mfa = MfaService(ctx)
    with pytest.raises(PermissionDenied, match="Verify the caller first"):
        mfa.reset(helpdesk, "bob")
    assert ("hd", "denied", "bob") in [e[:3] for e in events(ctx, "denied")]
    assert user_row(ctx, "bob").mfa_status == MfaStatus.CONFIGURED  # type: ignore[union-attr]
    # A reason is no way around it for helpdesk.
    with pytest.raises(PermissionDenied, match="Verify the caller first"):
        mfa.reset(helpdesk, "bob", override_reason="he sounded genuine")

    CallerCheck(ctx).check(other, "bob", pyotp.TOTP(secret).at(clock.now()), "factor")
    with pytest.raises(PermissionDenied):  # another agent's verification is not hers
        mfa.reset(helpdesk, "bob")
    clock.advance(seconds=30)
    CallerCheck(ctx).check(helpdesk, "bob", pyotp.TOTP(secret).at(clock.now()), "factor")
    mfa.reset(helpdesk, "bob")
    assert user_row(ctx, "bob").mfa_status == MfaStatus.PENDING  # type: ignore[union-attr]
    [reset] = [e for e in events(ctx, "mfa.reset")]
    assert reset[3]["caller"] == "verified" and reset[3]["caller_method"] == "factor"


def test_an_administrator_overrides_only_with_a_reason_which_is_audited(
    ctx: Context, clock: FixedClock, agents: tuple[Actor, Actor]
) -> None:
    _, admin = agents
    add_user(ctx, "bob")
    enroll_totp(ctx, clock, "bob")
    mfa = MfaService(ctx)
    for reason in (None, "   "):
        with pytest.raises(PermissionDenied, match="give a reason"):
            mfa.reset(admin, "bob", override_reason=reason)
    mfa.reset(admin, "bob", override_reason="Ticket 4711: phone stolen, ID checked at the desk")
    [reset] = events(ctx, "mfa.reset")
    assert reset[0] == "root"
    assert reset[3]["caller"] == "override"
    assert reset[3]["reason"] == "Ticket 4711: phone stolen, ID checked at the desk"


def test_the_cli_is_trusted_like_root_and_audited_as_such(
    ctx: Context, clock: FixedClock, cli_actor: Actor
) -> None:
    add_user(ctx, "bob")
    enroll_totp(ctx, clock, "bob")
    MfaService(ctx).reset(cli_actor, "bob")
    assert events(ctx, "mfa.reset")[0][3]["caller"] == "cli"


# Temporary access pass ----------------------------------------------------------------------------


@pytest.fixture
def bob_with_pass(ctx: Context, clock: FixedClock, agents: tuple[Actor, Actor]) -> tuple[str, str]:
    """bob has an authenticator; the helpdesk verified him and made a pass. (secret, pass)."""
    helpdesk, _ = agents
    add_user(ctx, "bob")
    secret = enroll_totp(ctx, clock, "bob")
    CallerCheck(ctx).check(helpdesk, "bob", pyotp.TOTP(secret).at(clock.now()), "factor")
    clock.advance(seconds=30)
    issued = AccessPasses(ctx).create_tap(helpdesk, "bob")
    assert issued.code is not None and issued.single_use
    assert issued.expires_at == clock.now() + timedelta(minutes=60)
    return secret, issued.code


def test_a_pass_needs_a_verified_caller(ctx: Context, agents: tuple[Actor, Actor]) -> None:
    helpdesk, admin = agents
    add_user(ctx, "bob", mfa_type="totp")
    with pytest.raises(PermissionDenied, match="Verify the caller first"):
        AccessPasses(ctx).create_tap(helpdesk, "bob")
    issued = AccessPasses(ctx).create_tap(admin, "bob", override_reason="in person, badge seen")
    assert issued.code
    [created] = events(ctx, "tap.create")
    assert created[3]["caller"] == "override" and created[3]["reason"] == "in person, badge seen"


def test_a_pass_works_once_stored_only_as_a_hash_and_leads_to_enrollment(
    ctx: Context, bob_with_pass: tuple[str, str]
) -> None:
    _, code = bob_with_pass
    bob = user_row(ctx, "bob")
    assert bob is not None and bob.id is not None
    with ctx.db.read() as session:
        [row] = session.exec(select(AccessPass)).all()
    assert code.replace("-", "") not in row.code_hash
    passes = AccessPasses(ctx)
    view = passes.active_tap("bob")
    assert view is not None and "single use" in view.summary
    redeemed = passes.redeem_tap(bob.id, code.lower())
    assert (redeemed.user.username, redeemed.mfa_type) == ("bob", "totp")
    with pytest.raises(Refused):
        passes.redeem_tap(bob.id, code)
    assert passes.active_tap("bob") is None
    assert [e[1] for e in events(ctx, "tap.")] == ["tap.create", "tap.redeem", "tap.refused"]


def test_a_pass_is_refused_after_expiry_and_after_revocation(
    ctx: Context, clock: FixedClock, agents: tuple[Actor, Actor], bob_with_pass: tuple[str, str]
) -> None:
    helpdesk, _ = agents
    _, code = bob_with_pass
    bob_id = user_row(ctx, "bob").id  # type: ignore[union-attr]
    passes = AccessPasses(ctx)
    clock.advance(seconds=60 * 60)
    with pytest.raises(Refused):
        passes.redeem_tap(bob_id, code)  # type: ignore[arg-type]

    clock.advance(seconds=-60 * 60)
    assert passes.revoke_tap(helpdesk, "bob")
    assert not passes.revoke_tap(helpdesk, "bob")
    with pytest.raises(Refused):
        passes.redeem_tap(bob_id, code)  # type: ignore[arg-type]
    assert ("hd", "tap.revoke", "bob") in [e[:3] for e in events(ctx, "tap.")]


def test_a_pass_is_never_a_second_factor(
    ctx: Context, clock: FixedClock, bob_with_pass: tuple[str, str]
) -> None:
    _, code = bob_with_pass
    mfa = MfaService(ctx)
    # Not for verify (the CLI and PAM), nor step-up, which both go through MfaService.verify.
    assert mfa.verify("bob", code).reason == "wrong_code"
    # Nor to confirm an enrollment.
    start = mfa.begin_enrollment(Actor.cli(), "bob", "totp")
    assert not mfa.confirm_code(Actor.cli(), start.credential_id, code)
    # Still good for what it is for.
    AccessPasses(ctx).redeem_tap(user_row(ctx, "bob").id, code)  # type: ignore[arg-type]


def test_a_reusable_pass_works_until_it_expires(
    ctx: Context, clock: FixedClock, agents: tuple[Actor, Actor]
) -> None:
    _, admin = agents
    SettingsStore(ctx).set_many(
        Actor.cli(), {"tap.single_use": "false", "tap.lifetime_minutes": "10"}
    )
    add_user(ctx, "bob", mfa_type="totp")
    code = AccessPasses(ctx).create_tap(admin, "bob", override_reason="new hire").code
    bob_id = user_row(ctx, "bob").id  # type: ignore[union-attr]
    AccessPasses(ctx).redeem_tap(bob_id, code)  # type: ignore[arg-type]
    AccessPasses(ctx).redeem_tap(bob_id, code)  # type: ignore[arg-type]
    clock.advance(seconds=10 * 60)
    with pytest.raises(Refused):
        AccessPasses(ctx).redeem_tap(bob_id, code)  # type: ignore[arg-type]


# Enrollment invitation ----------------------------------------------------------------------------


def test_an_invitation_sets_the_password_and_leads_to_enrollment_once(
    ctx: Context, agents: tuple[Actor, Actor]
) -> None:
    helpdesk, _ = agents
    UserService(ctx).create(Actor.cli(), "dave", mfa_type="totp")  # imported: no password
    issued = AccessPasses(ctx).invite(helpdesk, "dave")
    assert issued.code is not None and issued.sent_to is None
    with ctx.db.read() as session:
        assert session.exec(select(MfaCredential)).all() == []  # nothing secret exists yet

    passes = AccessPasses(ctx)
    with pytest.raises(Refused):
        passes.redeem_invitation("dave", "AAAA-BBBB-CCCC-DDDD", NEW_PASSWORD)
    redeemed = passes.redeem_invitation("dave", issued.code, NEW_PASSWORD)
    assert (redeemed.user.username, redeemed.mfa_type) == ("dave", "totp")
    assert AuthService(ctx).check_password("dave", NEW_PASSWORD).reason == "ok"
    with pytest.raises(Refused):
        passes.redeem_invitation("dave", issued.code, NEW_PASSWORD)
    # An invitation is no temporary access pass.
    assert MfaService(ctx).verify("dave", issued.code).accepted is False


def test_an_invitation_is_emailed_when_email_is_set_up(
    ctx: Context, agents: tuple[Actor, Actor], smtp: SmtpServer
) -> None:
    helpdesk, _ = agents
    SettingsStore(ctx).set_many(Actor.cli(), smtp.settings())
    add_user(ctx, "erin", email="erin@example.com")
    MfaService(ctx).set_type(Actor.cli(), "erin", "totp", configure_later=True)
    issued = AccessPasses(ctx).invite(helpdesk, "erin")
    assert issued.code is None and issued.sent_to == "er…@example.com"
    [mail] = smtp.wait_for(1)
    code = re.search(r"\b([2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4})\b", mail.text)
    assert code is not None
    assert AccessPasses(ctx).redeem_invitation("erin", code.group(1), NEW_PASSWORD).mfa_type == (
        "totp"
    )


def test_an_invitation_whose_email_cannot_be_sent_is_not_left_live(
    ctx: Context, agents: tuple[Actor, Actor], smtp: SmtpServer, refused_port: int
) -> None:
    """SMTP down: the agent is told, no live code that nobody received, and the log says so;
    once the server is back the same invitation goes out and works."""
    helpdesk, _ = agents
    dead_port = refused_port
    SettingsStore(ctx).set_many(Actor.cli(), {**smtp.settings(), "smtp.port": str(dead_port)})
    add_user(ctx, "ivy", email="ivy@example.com")
    MfaService(ctx).set_type(Actor.cli(), "ivy", "totp", configure_later=True)
    with pytest.raises(MfaTuiError) as unsent:
        AccessPasses(ctx).invite(helpdesk, "ivy")
    assert "\n" not in str(unsent.value) and str(dead_port) in str(unsent.value)
    with ctx.db.read() as session:
        [row] = session.exec(select(AccessPass)).all()
        events = list_events(session)
    assert row.revoked_at is not None
    assert [e.action for e in events[:2]] == ["invitation.revoke", "invitation.create"]
    assert events[0].details["reason"] == str(unsent.value)

    SettingsStore(ctx).set_many(Actor.cli(), smtp.settings())
    assert AccessPasses(ctx).invite(helpdesk, "ivy").sent_to == "iv…@example.com"
    [mail] = smtp.wait_for(1)
    code = re.search(r"\b([2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4})\b", mail.text)
    assert code is not None
    assert AccessPasses(ctx).redeem_invitation("ivy", code.group(1), NEW_PASSWORD)


def test_no_invitation_for_a_working_factor_or_no_type(
    ctx: Context, clock: FixedClock, agents: tuple[Actor, Actor]
) -> None:
    helpdesk, _ = agents
    add_user(ctx, "bob")
    with pytest.raises(InputError, match="Choose an MFA type"):
        AccessPasses(ctx).invite(helpdesk, "bob")
    enroll_totp(ctx, clock, "bob")
    with pytest.raises(InputError, match="temporary access pass"):
        AccessPasses(ctx).invite(helpdesk, "bob")
    assert AuthService(ctx).check_password("bob", PASSWORD).reason == "ok"


def test_guessing_without_a_live_pass_locks_nobody_out(
    ctx: Context, clock: FixedClock, agents: tuple[Actor, Actor]
) -> None:
    """The invitation screen is open before login: wrong codes for an account that has no live
    invitation or pass must not use up its owner's lockout budget."""
    add_user(ctx, "root2", role="admin")
    totp = pyotp.TOTP(enroll_totp(ctx, clock, "root2"))
    passes = AccessPasses(ctx)
    for _ in range(10):
        with pytest.raises(Refused):
            passes.redeem_invitation("root2", "AAAA-BBBB-CCCC-DDDD", NEW_PASSWORD)
        with pytest.raises(Refused):
            passes.redeem_tap(UserService(ctx).get("root2").id, "AAAA-BBBB-CCCC-DDDD")
    assert not UserService(ctx).get("root2").locked
    assert MfaService(ctx).verify("root2", totp.at(clock.now())).accepted
    assert AuthService(ctx).check_password("root2", PASSWORD).reason == "ok"  # untouched


def test_an_invitation_ends_when_a_factor_is_set_up_or_the_role_changes(
    ctx: Context, clock: FixedClock, agents: tuple[Actor, Actor]
) -> None:
    helpdesk, _ = agents
    for name in ("fay", "gus"):
        UserService(ctx).create(Actor.cli(), name, mfa_type="totp")
    fay_code = AccessPasses(ctx).invite(helpdesk, "fay").code
    gus_code = AccessPasses(ctx).invite(helpdesk, "gus").code
    assert fay_code is not None and gus_code is not None

    enroll_totp(ctx, clock, "fay")  # set up another way (staff configured it now)
    with pytest.raises(Refused):
        AccessPasses(ctx).redeem_invitation("fay", fay_code, NEW_PASSWORD)
    assert AuthService(ctx).check_password("fay", NEW_PASSWORD).reason != "ok"

    gus = UserService(ctx).get("gus")
    UserService(ctx).update_general(Actor.cli(), gus.id, gus.version, GeneralFields(role="admin"))
    with pytest.raises(Refused):
        AccessPasses(ctx).redeem_invitation("gus", gus_code, NEW_PASSWORD)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, None),  # nothing set up: use a backup code
        ({"smtp.host": "mail.example.com"}, "email"),  # email first
        ({"sms.account_sid": "AC1"}, None),  # a gateway account alone sends nothing
        ({"sms.account_sid": "AC1", "sms.auth_token": "t", "sms.from": "+15550000000"}, "sms"),
        ({"sms.mode": "carrier", "sms.carrier_domain": "sms.example.net"}, None),  # no SMTP
        (
            {"sms.mode": "carrier", "sms.account_sid": "AC1", "sms.auth_token": "t"},
            None,  # carrier mode ignores the gateway account left from before
        ),
    ],
)
def test_a_code_for_a_lost_factor_goes_only_where_it_can_be_delivered(
    values: dict[str, str], expected: str | None
) -> None:
    from mfa_tui.core.models import User
    from mfa_tui.core.services.caller_check import lost_channel
    from mfa_tui.core.settings import Settings

    settings = Settings.from_values(values)
    with_phone_only = User(username="pat", username_key="pat", phone="+15551230000")
    with_both = User(username="kim", username_key="kim", email="kim@example.com", phone="+1555")
    if expected == "email":
        assert lost_channel(settings, with_both) == "email"
        assert lost_channel(settings, with_phone_only) is None
    else:
        assert lost_channel(settings, with_phone_only) == expected
