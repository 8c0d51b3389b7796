"""SMS codes through a local gateway speaking the Twilio Messages API (HTTP on 127.0.0.1, basic
auth, form fields To/From/Body, 201), or through a carrier email-to-SMS gateway (real SMTP).

Failures of the gateway (401, 500, a timeout) give one clear sentence and leave nothing half-done:
no usable code, no enrollment in progress, no attempt counted against the user.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from mfa_tui.core import validation
from mfa_tui.core.access import Actor
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.config import Config
from mfa_tui.core.context import Context, open_context
from mfa_tui.core.errors import InputError
from mfa_tui.core.factors import FactorEnv, ProviderUnavailable, factor_for
from mfa_tui.core.models import DeliveredCode, Lockout, MfaCredential
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import UserService
from tests.helpers.smtp_server import smtp_server
from tests.helpers.twilio_standin import TwilioStandin, twilio_standin

NUMBER = "+14155550123"
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def gateway() -> Iterator[TwilioStandin]:
    with twilio_standin() as standin:
        yield standin


def configure(ctx: Context, **values: str) -> None:
    SettingsStore(ctx).set_many(Actor.cli(), {"mfa.supported": "totp,email,sms", **values})


@pytest.fixture
def carol(ctx: Context, gateway: TwilioStandin) -> Context:
    configure(ctx, **gateway.settings())
    UserService(ctx).create(Actor.cli(), "carol", phone="+1 (415) 555-0123")
    return ctx


def enroll_sms(ctx: Context, gateway: TwilioStandin) -> None:
    service = MfaService(ctx)
    start = service.begin_enrollment(Actor.cli(), "carol", "sms")
    assert service.confirm_code(Actor.cli(), start.credential_id, gateway.last_code_to(NUMBER))
    service.activate(Actor.cli(), "carol", start.credential_id)


def live_codes(ctx: Context) -> list[DeliveredCode]:
    with ctx.db.read() as session:
        return list(
            session.exec(select(DeliveredCode).where(DeliveredCode.used_at == None)).all()  # noqa: E711
        )


def failed_attempts(ctx: Context, name: str) -> int:
    user = UserService(ctx).get(name)
    with ctx.db.read() as session:
        row = session.get(Lockout, user.id)
        return row.failed_attempts if row else 0


def test_enroll_by_sms_then_log_in(
    carol: Context, gateway: TwilioStandin, clock: FixedClock
) -> None:
    assert UserService(carol).get("carol").phone == NUMBER  # stored in E.164
    service = MfaService(carol)
    start = service.begin_enrollment(Actor.cli(), "carol", "sms")
    assert NUMBER in start.instructions and "was sent to +1…0123" in start.instructions
    [sms] = gateway.messages
    assert (sms.to, sms.sender) == (NUMBER, gateway.sender)
    assert sms.body == f"Your mfa-tui code is {sms.code}. It is valid for 10 minutes."
    wrong = f"{(int(sms.code) + 1) % 10**6:06d}"
    assert not service.confirm_code(Actor.cli(), start.credential_id, wrong)
    assert service.confirm_code(Actor.cli(), start.credential_id, sms.code)
    service.activate(Actor.cli(), "carol", start.credential_id)

    clock.advance(seconds=61)
    assert service.send_challenge("carol") == (
        "A 6-digit code was sent to +1…0123; it is valid for 10 minutes."
    )
    code = gateway.last_code_to(NUMBER)
    assert len(gateway.messages) == 2
    outcome = service.verify("carol", code)
    assert (outcome.accepted, outcome.method) == (True, "sms")
    assert not service.verify("carol", code).accepted  # single use


@SQLITE_ONLY
def test_enrollment_is_refused_without_a_phone_number(ctx: Context, gateway: TwilioStandin) -> None:
    configure(ctx, **gateway.settings())
    UserService(ctx).create(Actor.cli(), "dave")
    with pytest.raises(InputError, match=r"'dave' has no phone number: add one under General"):
        MfaService(ctx).begin_enrollment(Actor.cli(), "dave", "sms")
    assert gateway.requests == 0


@pytest.mark.parametrize(
    ("knobs", "sentence"),
    [
        (
            {"auth_token": "wrong-token"},
            "refused the account SID or auth token (HTTP 401): check sms.account_sid and sms.auth_token.",
        ),
        ({"fail_with": 500}, "failed (HTTP 500: Internal Server Error); try again later."),
        ({"delay": 1.5}, "did not answer within 1 s; try again later."),
    ],
    ids=["401", "500", "timeout"],
)
@SQLITE_ONLY
def test_gateway_failures_are_clear_and_leave_nothing_half_done(
    carol: Context,
    gateway: TwilioStandin,
    clock: FixedClock,
    knobs: dict[str, object],
    sentence: str,
) -> None:
    enroll_sms(carol, gateway)
    clock.advance(seconds=61)
    where = f"The SMS gateway at {gateway.url.removeprefix('http://')} "
    for name, value in knobs.items():
        if name == "auth_token":
            configure(carol, **{"sms.auth_token": str(value)})
        else:
            setattr(gateway, name, value)
    service = MfaService(carol)

    # At login: the prompt says why, no code is left that nobody received, nothing is counted.
    with pytest.raises(ProviderUnavailable) as failure:
        service.send_challenge("carol")
    assert str(failure.value) == where + sentence
    assert live_codes(carol) == []
    assert failed_attempts(carol, "carol") == 0
    assert not UserService(carol).get("carol").locked

    # A new enrollment that cannot send its code is removed; the working factor stays.
    with pytest.raises(ProviderUnavailable):
        service.begin_enrollment(Actor.cli(), "carol", "sms")
    with carol.db.read() as session:
        assert [c.state for c in session.exec(select(MfaCredential)).all()] == ["active"]
    assert live_codes(carol) == []

    # The gateway recovers: the next challenge goes out at once (nothing throttles it).
    gateway.fail_with, gateway.delay = None, 0.0
    configure(carol, **{"sms.auth_token": gateway.auth_token})
    assert service.send_challenge("carol").startswith("A 6-digit code was sent")  # type: ignore[union-attr]
    assert service.verify("carol", gateway.last_code_to(NUMBER)).accepted


@SQLITE_ONLY
def test_an_unset_gateway_says_what_to_set(ctx: Context, gateway: TwilioStandin) -> None:
    configure(ctx, **{**gateway.settings(), "sms.from": ""})
    UserService(ctx).create(Actor.cli(), "carol", phone=NUMBER)
    with pytest.raises(ProviderUnavailable, match="SMS delivery is not set up"):
        MfaService(ctx).begin_enrollment(Actor.cli(), "carol", "sms")
    assert gateway.requests == 0


@SQLITE_ONLY
def test_carrier_mode_sends_an_email_to_the_carrier_gateway(
    ctx: Context, clock: FixedClock
) -> None:
    with smtp_server() as smtp:
        configure(
            ctx,
            **smtp.settings(),
            **{"sms.mode": "carrier", "sms.carrier_domain": "txt.example.net"},
        )
        UserService(ctx).create(Actor.cli(), "carol", phone=NUMBER)
        service = MfaService(ctx)
        start = service.begin_enrollment(Actor.cli(), "carol", "sms")
        [mail] = smtp.wait_for(1)
        assert mail.recipients == ["4155550123@txt.example.net"]
        assert service.confirm_code(Actor.cli(), start.credential_id, mail.code)


@SQLITE_ONLY
def test_settings_test_texts_the_administrator(ctx: Context, gateway: TwilioStandin) -> None:
    configure(ctx, **gateway.settings())
    users = UserService(ctx)
    root = users.create(Actor.cli(), "root", role="admin", phone=NUMBER)
    ops = users.create(Actor.cli(), "ops", role="admin")
    factor = factor_for("sms")
    env = FactorEnv(ctx, SettingsStore(ctx).load(), ctx.clock.now())
    said = factor.test_settings(env, users.user_row(root.id))  # type: ignore[attr-defined]
    assert said == f"A test text message was sent to {NUMBER} through the SMS gateway."
    assert [sms.body for sms in gateway.messages] == ["mfa-tui: the SMS settings work."]
    with pytest.raises(InputError, match="Add a phone number to your own account first"):
        factor.test_settings(env, users.user_row(ops.id))  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("+1 (415) 555-0123", "+14155550123"),
        ("0044 20 7946 0958", "+442079460958"),
        ("+44 (0)20 7946 0958", "+442079460958"),  # the UK trunk 0 written in brackets
        ("+1 555 0100", None),
        ("12345", None),
    ],
)
def test_phone_numbers_are_validated_and_stored_in_e164(typed: str, stored: str | None) -> None:
    if stored is not None:
        assert validation.phone(typed) == stored
        return
    with pytest.raises(InputError, match=f"^'{re.escape(typed)}' is not a (valid )?phone number"):
        validation.phone(typed)


def test_sqlite_file_holds_neither_the_auth_token_nor_a_code(
    sqlite_url: str, tmp_path: Path, clock: FixedClock, gateway: TwilioStandin
) -> None:
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    ctx = open_context(Config(database_url=sqlite_url, key_file=tmp_path / "k.key"), clock)
    try:
        configure(ctx, **gateway.settings())
        UserService(ctx).create(Actor.cli(), "carol", phone=NUMBER)
        enroll_sms(ctx, gateway)
        clock.advance(seconds=61)
        MfaService(ctx).send_challenge("carol")
        with ctx.db.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        content = path.read_bytes()
        assert gateway.auth_token.encode() not in content
        for sms in gateway.messages:
            assert sms.code.encode() not in content
        assert SettingsStore(ctx).load()["sms.auth_token"] == gateway.auth_token
    finally:
        ctx.close()
