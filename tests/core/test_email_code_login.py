"""The "Email code" alternate way to log in (setting alternate.email), through a real SMTP server.

A user whose factor is elsewhere (an authenticator, a key, a phone) asks for a code by email at the
login prompt. It works once, for logging in only, counts toward the same lockout as every other
code, and is offered only when Server Settings turn it on and SMTP is set up.
"""

from __future__ import annotations

import pytest

from mfa_tui.core.access import Actor
from mfa_tui.core.audit import list_events
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.errors import InputError, Refused
from mfa_tui.core.services.mfa import MfaService, email_code_offered
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import UserService
from tests.helpers.smtp_server import SmtpServer
from tests.ui.conftest import enroll_totp

ALICE = "alice@example.com"
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def alice(ctx: Context, clock: FixedClock, smtp: SmtpServer) -> Context:
    """alice logs in with an authenticator; Email code is on as the alternate way."""
    SettingsStore(ctx).set_many(Actor.cli(), {**smtp.settings(), "alternate.email": "true"})
    UserService(ctx).create(Actor.cli(), "alice", email=ALICE)
    enroll_totp(ctx, clock, "alice")
    return ctx


def test_an_emailed_code_logs_in_once_and_is_audited(alice: Context, smtp: SmtpServer) -> None:
    service = MfaService(alice)
    said = service.send_email_code("alice")
    assert said == "A 6-digit code was sent to al…@example.com; it is valid for 10 minutes."
    [mail] = smtp.wait_for(1)
    assert mail.recipients == [ALICE]

    outcome = service.verify("alice", mail.code)
    assert (outcome.accepted, outcome.method) == (True, "email_code")
    assert service.verify("alice", mail.code).reason == "wrong_code"  # used up

    with alice.db.read() as session:
        events = [(e.action, e.details) for e in list_events(session, text="verify")]
    assert ("verify.email_code_sent", {}) in events
    assert ("verify.accepted", {"method": "email_code"}) in events


@SQLITE_ONLY
def test_the_code_never_confirms_an_enrollment(alice: Context, smtp: SmtpServer) -> None:
    service = MfaService(alice)
    service.send_email_code("alice")
    code = smtp.wait_for(1)[0].code
    start = service.begin_enrollment(Actor.cli(), "alice", "totp")
    assert not service.confirm_code(Actor.cli(), start.credential_id, code)
    # Still good for the login it was sent for.
    assert service.verify("alice", code).method == "email_code"


@SQLITE_ONLY
def test_wrong_email_codes_count_toward_the_account_lockout(
    alice: Context, smtp: SmtpServer
) -> None:
    SettingsStore(alice).set_many(Actor.cli(), {"lockout.attempts": "3"})
    service = MfaService(alice)
    service.send_email_code("alice")
    code = smtp.wait_for(1)[0].code
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    outcomes = [service.verify("alice", wrong) for _ in range(3)]
    assert [o.reason for o in outcomes] == ["wrong_code"] * 3 and outcomes[-1].locked_now
    # Locked: the right code is refused, and no new code is sent.
    assert service.verify("alice", code).reason == "locked"
    with pytest.raises(Refused, match="locked"):
        service.send_email_code("alice")
    assert len(smtp.messages) == 1


@SQLITE_ONLY
def test_a_backup_code_while_an_email_code_is_out_spends_none_of_its_attempts(
    alice: Context, smtp: SmtpServer
) -> None:
    service = MfaService(alice)
    [backup, *_rest] = service.generate_backup_codes(Actor.cli(), "alice")
    service.send_email_code("alice")
    code = smtp.wait_for(1)[0].code
    assert service.verify("alice", backup).method == "backup_code"
    assert service.verify("alice", code).method == "email_code"


@SQLITE_ONLY
def test_offered_only_when_on_with_smtp_an_address_and_another_factor(
    ctx: Context, clock: FixedClock, smtp: SmtpServer
) -> None:
    users = UserService(ctx)
    SettingsStore(ctx).set_many(Actor.cli(), smtp.settings())
    users.create(Actor.cli(), "alice", email=ALICE)
    users.create(Actor.cli(), "nomail")
    users.create(Actor.cli(), "nofactor", email="n@example.com")
    enroll_totp(ctx, clock, "alice")
    enroll_totp(ctx, clock, "nomail")
    service = MfaService(ctx)

    # Off by default: not offered, nothing sent, and a 6-digit guess is just a wrong TOTP code.
    with pytest.raises(InputError, match="Email codes are not available for this account"):
        service.send_email_code("alice")
    SettingsStore(ctx).set_many(Actor.cli(), {"alternate.email": "true"})
    settings = SettingsStore(ctx).load()
    assert email_code_offered(settings, ALICE, "totp")
    assert not email_code_offered(settings, None, "totp")
    assert not email_code_offered(settings, ALICE, "none")
    assert not email_code_offered(settings, ALICE, "email")  # email is already the factor
    for name in ("nomail", "nofactor", "nobody"):
        with pytest.raises(InputError, match="not available"):
            service.send_email_code(name)
    SettingsStore(ctx).set_many(Actor.cli(), {"smtp.host": ""})
    assert not email_code_offered(SettingsStore(ctx).load(), ALICE, "totp")
    assert smtp.messages == []
