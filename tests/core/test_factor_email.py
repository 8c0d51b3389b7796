"""Email codes through a real SMTP server (aiosmtpd on 127.0.0.1): enrollment, login, the code's
lifetime, attempts and single use, the resend throttle, SMTP security and login, and SMTP down.

Each test reads the code from the message the server received, as the user would.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlmodel import select

from mfa_tui.core.access import Actor
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.config import Config
from mfa_tui.core.context import Context, open_context
from mfa_tui.core.delivery import codes
from mfa_tui.core.errors import InputError
from mfa_tui.core.factors import FactorEnv, ProviderUnavailable, factor_for
from mfa_tui.core.models import CredentialState, DeliveredCode, Lockout, MfaCredential
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import UserService
from tests.helpers.smtp_server import SmtpServer, smtp_server

ALICE = "alice@example.com"
# The engine matters for the flow and for concurrency; the rest runs on SQLite only, to stay fast.
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
# A login over plain SMTP is what smtp.security "none" means; aiosmtpd warns about serving it.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def configure(ctx: Context, **values: str) -> None:
    SettingsStore(ctx).set_many(Actor.cli(), {"mfa.supported": "totp,email,sms", **values})


def enroll_email(ctx: Context, smtp: SmtpServer, name: str = "alice") -> str:
    """``name`` with a working Email factor; returns the credential id."""
    service = MfaService(ctx)
    start = service.begin_enrollment(Actor.cli(), name, "email")
    assert service.confirm_code(Actor.cli(), start.credential_id, smtp.messages[-1].code)
    service.activate(Actor.cli(), name, start.credential_id)
    return start.credential_id


@pytest.fixture
def alice(ctx: Context, smtp: SmtpServer) -> Context:
    configure(ctx, **smtp.settings())
    UserService(ctx).create(Actor.cli(), "alice", email=ALICE)
    return ctx


def code_rows(ctx: Context) -> list[DeliveredCode]:
    with ctx.db.read() as session:
        return list(session.exec(select(DeliveredCode).order_by(DeliveredCode.id)).all())


def failed_attempts(ctx: Context, name: str) -> int:
    user = UserService(ctx).get(name)
    with ctx.db.read() as session:
        row = session.get(Lockout, user.id)
        return row.failed_attempts if row else 0


def test_enroll_by_email_then_log_in_with_a_new_code_once(
    alice: Context, smtp: SmtpServer, clock: FixedClock
) -> None:
    service = MfaService(alice)
    start = service.begin_enrollment(Actor.cli(), "alice", "email")
    assert ALICE in start.instructions and "was sent to al…@example.com" in start.instructions
    [mail] = smtp.wait_for(1)
    assert mail.recipients == [ALICE] and mail.sender == "mfa@example.com"
    assert mail.message["Subject"] == "Your mfa-tui code"
    assert "valid for 10 minutes" in mail.text
    wrong = f"{(int(mail.code) + 1) % 10**6:06d}"
    assert not service.confirm_code(Actor.cli(), start.credential_id, wrong)
    assert service.confirm_code(Actor.cli(), start.credential_id, mail.code)
    service.activate(Actor.cli(), "alice", start.credential_id)
    assert UserService(alice).get("alice").mfa_status == "configured"
    # The code that confirmed the enrollment was used up: it does not log in.
    assert not service.verify("alice", mail.code).accepted

    clock.advance(seconds=61)
    sent = service.send_challenge("alice")
    assert sent == "A 6-digit code was sent to al…@example.com; it is valid for 10 minutes."
    login_code = smtp.wait_for(2)[1].code
    outcome = service.verify("alice", login_code)
    assert (outcome.accepted, outcome.method) == (True, "email")
    # Single use: the same code again is refused.
    assert service.verify("alice", login_code).reason == "wrong_code"

    # Only hashes are stored: no row holds a code that was sent.
    stored = " ".join(f"{row.code_hash}" for row in code_rows(alice))
    assert mail.code not in stored and login_code not in stored


@SQLITE_ONLY
def test_enrollment_is_refused_without_an_email_address(ctx: Context, smtp: SmtpServer) -> None:
    configure(ctx, **smtp.settings())
    UserService(ctx).create(Actor.cli(), "bob")
    with pytest.raises(InputError, match=r"'bob' has no email address: add one under General"):
        MfaService(ctx).begin_enrollment(Actor.cli(), "bob", "email")
    assert smtp.messages == []


@SQLITE_ONLY
def test_a_code_expires_after_ten_minutes(
    alice: Context, smtp: SmtpServer, clock: FixedClock
) -> None:
    enroll_email(alice, smtp)
    clock.advance(seconds=61)
    MfaService(alice).send_challenge("alice")
    code = smtp.wait_for(2)[1].code
    clock.advance(minutes=10)
    assert MfaService(alice).verify("alice", code).reason == "wrong_code"


@SQLITE_ONLY
def test_five_wrong_guesses_use_up_a_code(
    alice: Context, smtp: SmtpServer, clock: FixedClock
) -> None:
    configure(alice, **{"lockout.attempts": "20"})  # the code's own limit, not the account's
    enroll_email(alice, smtp)
    clock.advance(seconds=61)
    service = MfaService(alice)
    service.send_challenge("alice")
    code = smtp.wait_for(2)[1].code
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(codes.MAX_ATTEMPTS - 1):
        assert not service.verify("alice", wrong).accepted
    # The fifth guess may still be the right one...
    assert service.verify("alice", code).accepted

    clock.advance(seconds=61)
    service.send_challenge("alice")
    code = smtp.wait_for(3)[2].code
    for _ in range(codes.MAX_ATTEMPTS):
        assert not service.verify("alice", wrong).accepted
    # ...but after five wrong ones the right code is refused too.
    assert not service.verify("alice", code).accepted
    # A new code can be sent at once (the used-up one does not throttle) and works.
    service.send_challenge("alice")
    assert service.verify("alice", smtp.wait_for(4)[3].code).accepted


@SQLITE_ONLY
def test_a_second_challenge_within_a_minute_sends_nothing_and_says_so(
    alice: Context, smtp: SmtpServer, clock: FixedClock
) -> None:
    enroll_email(alice, smtp)
    clock.advance(seconds=61)
    service = MfaService(alice)
    service.send_challenge("alice")
    first = smtp.wait_for(2)[1].code
    clock.advance(seconds=59)
    again = service.send_challenge("alice")
    assert again is not None and "less than a minute ago" in again
    assert len(smtp.messages) == 2
    clock.advance(seconds=2)
    assert service.send_challenge(
        "alice",
    ).startswith("A 6-digit code was sent")  # type: ignore[union-attr]
    second = smtp.wait_for(3)[2].code
    if first != second:
        # Only the newest code works once a new one has gone out.
        assert not service.verify("alice", first).accepted
    assert service.verify("alice", second).accepted


def test_the_right_code_is_accepted_once_by_many_checkers_at_once(
    alice: Context, smtp: SmtpServer, clock: FixedClock
) -> None:
    """Every checker has its own connection; the conditional UPDATE lets exactly one through."""
    credential_id = enroll_email(alice, smtp)
    clock.advance(seconds=61)
    MfaService(alice).send_challenge("alice")
    code = smtp.wait_for(2)[1].code
    factor = factor_for("email")
    with alice.db.read() as session:
        credential = session.get(MfaCredential, credential_id)
    user = UserService(alice).user_row(UserService(alice).get("alice").id)
    env = FactorEnv(alice, SettingsStore(alice).load(), clock.now())
    barrier = threading.Barrier(4)
    results: list[bool] = []

    def check() -> None:
        barrier.wait()
        results.append(factor.verify(env, credential, user, code) is not None)  # type: ignore[arg-type]

    threads = [threading.Thread(target=check) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]


def test_smtp_down_is_a_clear_failure_that_leaves_nothing_behind(
    ctx: Context, smtp: SmtpServer, clock: FixedClock, refused_port: int
) -> None:
    configure(ctx, **smtp.settings())
    UserService(ctx).create(Actor.cli(), "alice", email=ALICE)
    enroll_email(ctx, smtp)
    port = refused_port
    configure(ctx, **{"smtp.port": str(port)})
    clock.advance(seconds=61)
    service = MfaService(ctx)
    with pytest.raises(ProviderUnavailable) as failure:
        service.send_challenge("alice")
    assert str(failure.value) == (
        f"Could not reach the SMTP server at 127.0.0.1:{port} (connection refused); "
        "check smtp.host and smtp.port."
    )
    # No code that nobody received, and nothing that throttles the next try.
    assert [row for row in code_rows(ctx) if row.used_at is None] == []
    assert failed_attempts(ctx, "alice") == 0

    # A new enrollment that cannot send its code is removed again.
    with pytest.raises(ProviderUnavailable):
        service.begin_enrollment(Actor.cli(), "alice", "email")
    with ctx.db.read() as session:
        states = session.exec(select(MfaCredential.state)).all()
    assert states == [CredentialState.ACTIVE]

    # SMTP back: the next challenge is sent at once.
    configure(ctx, **{"smtp.port": str(smtp.port)})
    assert service.send_challenge("alice").startswith("A 6-digit code was sent")  # type: ignore[union-attr]


@SQLITE_ONLY
def test_smtp_login_is_used_and_a_wrong_password_is_named(ctx: Context, clock: FixedClock) -> None:
    with smtp_server(username="mailer", password="s3cret-pass") as server:
        configure(ctx, **server.settings())
        UserService(ctx).create(Actor.cli(), "alice", email=ALICE)
        MfaService(ctx).begin_enrollment(Actor.cli(), "alice", "email")
        assert server.logins == ["mailer"] and len(server.wait_for(1)) == 1

        configure(ctx, **{"smtp.password": "wrong"})
        clock.advance(seconds=61)
        with pytest.raises(ProviderUnavailable, match="refused the username or password"):
            MfaService(ctx).begin_enrollment(Actor.cli(), "alice", "email")


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_starttls_and_tls(
    sqlite_url: str, tmp_path: Path, clock: FixedClock, security: str
) -> None:
    ctx = open_context(Config(database_url=sqlite_url, key_file=tmp_path / "k.key"), clock)
    try:
        with smtp_server(
            security=security, username="mailer", password="pw", cert_dir=tmp_path
        ) as server:
            configure(ctx, **server.settings())
            UserService(ctx).create(Actor.cli(), "alice", email=ALICE)
            MfaService(ctx).begin_enrollment(Actor.cli(), "alice", "email")
            assert server.wait_for(1)[0].recipients == [ALICE]
            assert server.logins == ["mailer"]

            # The certificate is self-signed: verifying it (the default) refuses it, and says so.
            configure(ctx, **{"smtp.verify_tls": "true"})
            clock.advance(seconds=61)
            with pytest.raises(ProviderUnavailable, match=r"TLS certificate .* is not trusted"):
                MfaService(ctx).begin_enrollment(Actor.cli(), "alice", "email")
    finally:
        ctx.close()


@SQLITE_ONLY
def test_settings_test_sends_to_the_administrator(ctx: Context, smtp: SmtpServer) -> None:
    configure(ctx, **smtp.settings())
    users = UserService(ctx)
    with_mail = users.create(Actor.cli(), "root", role="admin", email="root@example.com")
    without = users.create(Actor.cli(), "ops", role="admin")
    factor = factor_for("email")
    env = FactorEnv(ctx, SettingsStore(ctx).load(), ctx.clock.now())
    said = factor.test_settings(env, users.user_row(with_mail.id))  # type: ignore[attr-defined]
    assert said == f"A test email was sent to root@example.com through 127.0.0.1:{smtp.port}."
    assert smtp.wait_for(1)[0].recipients == ["root@example.com"]
    said = factor.test_settings(env, users.user_row(without.id))  # type: ignore[attr-defined]
    assert said.startswith(f"Connected to the SMTP server at 127.0.0.1:{smtp.port} (none).")
    assert len(smtp.messages) == 1


def test_sqlite_file_holds_neither_the_smtp_password_nor_a_code(
    sqlite_url: str, tmp_path: Path, clock: FixedClock
) -> None:
    password = "Smtp-Pa55word-Xyzzy"
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    ctx = open_context(Config(database_url=sqlite_url, key_file=tmp_path / "k.key"), clock)
    try:
        with smtp_server(username="mailer", password=password) as server:
            configure(ctx, **server.settings())
            UserService(ctx).create(Actor.cli(), "alice", email=ALICE)
            enroll_email(ctx, server)
            clock.advance(seconds=61)
            MfaService(ctx).send_challenge("alice")
            sent = [mail.code for mail in server.wait_for(2)]
        with ctx.db.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        content = path.read_bytes()
        assert password.encode() not in content
        assert password.encode("utf-16-le") not in content
        for code in sent:
            assert code.encode() not in content
        assert SettingsStore(ctx).load()["smtp.password"] == password  # stored, encrypted
    finally:
        ctx.close()
