"""``verify NAME --send`` and ``users set-mfa --type email|sms`` against a real SMTP server and a
local Twilio-API gateway: the code is read from what they received. A delivery failure exits 3
with the reason on one line and counts nothing against the user."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mfa_tui.core.access import Actor
from mfa_tui.core.models import Lockout
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import UserService
from tests.cli.conftest import Cli, assert_one_error_line
from tests.helpers.smtp_server import SmtpServer
from tests.helpers.twilio_standin import TwilioStandin, twilio_standin

ALICE = "alice@example.com"
NUMBER = "+14155550123"
REFUSED = "mfa-tui: Refused: the code was not accepted."


@pytest.fixture
def gateway() -> Iterator[TwilioStandin]:
    with twilio_standin() as standin:
        yield standin


def set_up(cli: Cli, values: dict[str, str], **users: dict[str, str]) -> None:
    context = cli.context()
    try:
        SettingsStore(context).set_many(Actor.cli(), {"mfa.supported": "totp,email,sms", **values})
        for name, fields in users.items():
            UserService(context).create(Actor.cli(), name, **fields)
    finally:
        context.close()


def enroll(cli: Cli, name: str, mfa_type: str, read_code: object) -> None:
    context = cli.context()
    try:
        service = MfaService(context)
        start = service.begin_enrollment(Actor.cli(), name, mfa_type)
        assert service.confirm_code(Actor.cli(), start.credential_id, read_code())  # type: ignore[operator]
        service.activate(Actor.cli(), name, start.credential_id)
    finally:
        context.close()


def failed_attempts(cli: Cli, name: str) -> int:
    context = cli.context()
    try:
        user = UserService(context).get(name)
        with context.db.read() as session:
            row = session.get(Lockout, user.id)
            return row.failed_attempts if row else 0
    finally:
        context.close()


def test_verify_send_emails_a_code_that_works_once(ready: Cli, smtp: SmtpServer) -> None:
    set_up(ready, smtp.settings(), alice={"email": ALICE})
    enroll(ready, "alice", "email", lambda: smtp.last_code_to(ALICE))

    # The code is read from the mailbox when the command asks for it, as a person would.
    result = ready("verify", "alice", "--send", stdin=lambda _: smtp.last_code_to(ALICE) + "\n")
    assert result.code == 0, result
    assert result.err_lines == [
        "A 6-digit code was sent to al…@example.com; it is valid for 10 minutes.",
        "Code accepted.",
    ]
    used = smtp.last_code_to(ALICE)
    replay = ready("verify", "alice", stdin=used + "\n")
    assert_one_error_line(replay, 1)
    assert replay.err_lines == [REFUSED]


def test_verify_send_with_smtp_down_exits_3_and_counts_nothing(
    sqlite_ready: Cli, smtp: SmtpServer, refused_port: int
) -> None:
    set_up(sqlite_ready, smtp.settings(), alice={"email": ALICE})
    enroll(sqlite_ready, "alice", "email", lambda: smtp.last_code_to(ALICE))
    port = refused_port
    set_up(sqlite_ready, {"smtp.port": str(port)})
    result = sqlite_ready("verify", "alice", "--send", stdin="123456\n")
    assert_one_error_line(
        result,
        3,
        f"Could not reach the SMTP server at 127.0.0.1:{port} (connection refused)",
    )
    assert failed_attempts(sqlite_ready, "alice") == 0
    assert sqlite_ready.users()["alice"]["locked"] is False


def test_verify_send_texts_a_code(sqlite_ready: Cli, gateway: TwilioStandin) -> None:
    set_up(sqlite_ready, gateway.settings(), carol={"phone": NUMBER})
    enroll(sqlite_ready, "carol", "sms", lambda: gateway.last_code_to(NUMBER))
    result = sqlite_ready(
        "verify", "carol", "--send", stdin=lambda _: gateway.last_code_to(NUMBER) + "\n"
    )
    assert result.code == 0, result
    assert result.err_lines[-1] == "Code accepted."
    assert len(gateway.messages) == 2


def test_verify_send_with_a_refused_gateway_exits_3(
    sqlite_ready: Cli, gateway: TwilioStandin
) -> None:
    set_up(sqlite_ready, gateway.settings(), carol={"phone": NUMBER})
    enroll(sqlite_ready, "carol", "sms", lambda: gateway.last_code_to(NUMBER))
    set_up(sqlite_ready, {"sms.auth_token": "not-the-token"})
    result = sqlite_ready("verify", "carol", "--send", stdin="123456\n")
    assert_one_error_line(result, 3, "refused the account SID or auth token (HTTP 401)")
    assert failed_attempts(sqlite_ready, "carol") == 0


def test_set_mfa_configures_sms_now_with_the_texted_code(
    sqlite_ready: Cli, gateway: TwilioStandin
) -> None:
    set_up(sqlite_ready, gateway.settings(), carol={"phone": NUMBER})
    result = sqlite_ready(
        "users", "set-mfa", "carol", "--type", "sms",
        stdin=lambda _: gateway.last_code_to(NUMBER) + "\n",
    )  # fmt: skip
    assert result.code == 0, result
    assert result.out.strip().endswith("carol: sms, configured.")
    row = sqlite_ready.users()["carol"]
    assert (row["mfa_type"], row["mfa_status"], row["phone"]) == ("sms", "configured", NUMBER)


def test_set_mfa_email_without_an_address_is_refused(sqlite_ready: Cli, smtp: SmtpServer) -> None:
    set_up(sqlite_ready, smtp.settings(), bob={})
    result = sqlite_ready("users", "set-mfa", "bob", "--type", "email", stdin="\n")
    assert_one_error_line(result, 2, "'bob' has no email address")
    assert smtp.messages == []


def test_users_add_rejects_a_number_that_cannot_exist(sqlite_ready: Cli) -> None:
    result = sqlite_ready("users", "add", "erin", "--phone", "+1 555 0100")
    assert_one_error_line(result, 2, "is not a valid phone number for its country code")
