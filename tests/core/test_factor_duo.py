"""Duo through the one factor protocol, against a local Auth API stand-in that checks Duo's signature.

The stand-in (tests/helpers/duo_standin.py) runs HTTPS on 127.0.0.1 with a fresh self-signed
certificate that the factor trusts through ``duo.ca_file``; nothing here leaves the machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlmodel import select

from mfa_tui.core import passwords
from mfa_tui.core.access import Actor
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.config import Config
from mfa_tui.core.context import Context, open_context
from mfa_tui.core.factors import FactorEnv, ProviderUnavailable, factor_for
from mfa_tui.core.models import Lockout, User
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import UserService
from tests.cli.conftest import Cli, assert_one_error_line
from tests.helpers.duo_standin import DuoStandIn, DuoUser, make_certificate, phone, running_duo

# duo_client builds its TLS context with ssl.PROTOCOL_TLS (still verifying): not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:ssl.PROTOCOL_TLS is deprecated:DeprecationWarning")
CLI = Actor.cli()
IPHONE, ANDROID = "DPIPHONE00000001111", "DPANDROID0000002222"


@pytest.fixture
def duo(tmp_path: Path) -> Iterator[DuoStandIn]:
    with running_duo(tmp_path) as server:
        server.users["alice"] = DuoUser(
            devices=[
                phone(IPHONE, "iOS (XXX-XXX-1111)"),
                phone("DPLANDLINE000003333", "Desk phone", push=False),
                phone(ANDROID, "Android (XXX-XXX-2222)"),
            ],
            passcodes={"314159", "2718281"},
        )
        yield server


def use_duo(ctx: Context, duo: DuoStandIn, **extra: str) -> None:
    SettingsStore(ctx).set_many(CLI, {**duo.settings(), "mfa.supported": "totp,duo", **extra})


@pytest.fixture
def duo_ctx(ctx: Context, duo: DuoStandIn) -> Context:
    """SQLite and PostgreSQL: Duo set up and supported, alice (no MFA yet) created."""
    use_duo(ctx, duo)
    UserService(ctx).create(CLI, "alice")
    return ctx


@pytest.fixture
def sqlite_ctx(tmp_path: Path, clock: FixedClock, duo: DuoStandIn) -> Iterator[Context]:
    """For checks that do not depend on the database engine."""
    context = open_context(
        Config(database_url=f"sqlite:///{tmp_path / 'mfa.db'}", key_file=tmp_path / "k.key"), clock
    )
    use_duo(context, duo)
    UserService(context).create(CLI, "alice")
    yield context
    context.close()


def enroll(ctx: Context, code: str = "push") -> None:
    service = MfaService(ctx)
    start = service.begin_enrollment(CLI, "alice", "duo")
    assert service.confirm_code(CLI, start.credential_id, code)
    service.activate(CLI, "alice", start.credential_id)


def failures(ctx: Context) -> int:
    with ctx.db.read() as session:
        user = session.exec(select(User).where(User.username_key == "alice")).one()
        row = session.get(Lockout, user.id)
        return row.failed_attempts if row else 0


def env_of(ctx: Context) -> FactorEnv:
    return FactorEnv(ctx, SettingsStore(ctx).load(), ctx.clock.now())


# The wire: signature and settings test -------------------------------------------------------------


def test_settings_test_uses_a_signed_check_and_names_a_bad_secret_key(
    sqlite_ctx: Context, duo: DuoStandIn
) -> None:
    factor = factor_for("duo")
    user = UserService(sqlite_ctx).user_row(UserService(sqlite_ctx).get("alice").id)
    said = factor.test_settings(env_of(sqlite_ctx), user)  # type: ignore[attr-defined]
    assert said == f"Duo at {duo.host} accepted the integration key and secret key."
    assert [(r.method, r.path, r.signed) for r in duo.requests] == [("GET", "/auth/v2/check", True)]

    SettingsStore(sqlite_ctx).set_many(CLI, {"duo.secret_key": "not-the-secret-key"})
    with pytest.raises(ProviderUnavailable, match="refused the request's signature"):
        factor.test_settings(env_of(sqlite_ctx), user)  # type: ignore[attr-defined]
    assert duo.requests[-1].signed is False  # the stand-in really checks the HMAC


def test_the_stand_in_refuses_a_request_signed_with_another_integration_key(
    sqlite_ctx: Context, duo: DuoStandIn
) -> None:
    SettingsStore(sqlite_ctx).set_many(CLI, {"duo.integration_key": "DIOTHERKEY0000000000"})
    with pytest.raises(ProviderUnavailable, match="integration key, secret key"):
        MfaService(sqlite_ctx).begin_enrollment(CLI, "alice", "duo")
    assert duo.requests[-1].path == "/auth/v2/preauth" and not duo.requests[-1].signed


def test_an_unset_duo_says_what_to_set(sqlite_ctx: Context) -> None:
    SettingsStore(sqlite_ctx).set_many(CLI, {"duo.api_host": ""})
    with pytest.raises(ProviderUnavailable, match="Duo is not set up"):
        MfaService(sqlite_ctx).begin_enrollment(CLI, "alice", "duo")


def test_a_certificate_from_another_ca_is_refused(
    sqlite_ctx: Context, duo: DuoStandIn, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    stranger, _ = make_certificate(other)
    SettingsStore(sqlite_ctx).set_many(CLI, {"duo.ca_file": str(stranger)})
    with pytest.raises(ProviderUnavailable, match="could not be verified"):
        MfaService(sqlite_ctx).begin_enrollment(CLI, "alice", "duo")
    assert duo.requests == []  # nothing was sent over a connection that was not trusted


# Enrollment and login ------------------------------------------------------------------------------


def test_enrollment_lists_the_devices_and_one_push_confirms_it(
    duo_ctx: Context, duo: DuoStandIn
) -> None:
    service = MfaService(duo_ctx)
    start = service.begin_enrollment(CLI, "alice", "duo")
    assert start.provisioning_uri is None
    assert "1: iOS (XXX-XXX-1111), 2: Android (XXX-XXX-2222)" in start.instructions
    assert "push 2 for device 2" in start.instructions
    assert "Desk phone" not in start.instructions  # it cannot take a push
    assert duo.calls("/auth/v2/auth") == []  # listing devices sends nothing to the phone

    assert service.confirm_code(CLI, start.credential_id, "push 2")
    push = duo.calls("/auth/v2/auth")[-1]
    assert push.signed and push.params["factor"] == "push"
    assert push.params["device"] == ANDROID and push.params["username"] == "alice"
    service.activate(CLI, "alice", start.credential_id)
    view = UserService(duo_ctx).get("alice")
    assert (view.mfa_type, view.mfa_status) == ("duo", "configured")

    # At login: the prompt shows the choice, "push" goes to the first device that takes one.
    assert "Type push for device 1" in (service.send_challenge("alice") or "")
    outcome = service.verify("alice", "push")
    assert outcome.accepted and outcome.method == "duo"
    assert duo.calls("/auth/v2/auth")[-1].params["device"] == IPHONE


def test_a_passcode_is_accepted_once_and_a_denied_push_counts_as_a_failure(
    duo_ctx: Context, duo: DuoStandIn
) -> None:
    enroll(duo_ctx)
    service = MfaService(duo_ctx)
    assert service.verify("alice", "2718 281").accepted  # spaces as read from an SMS
    assert duo.calls("/auth/v2/auth")[-1].params == {
        "async": "0",
        "factor": "passcode",
        "passcode": "2718281",
        "username": "alice",
    }
    assert service.verify("alice", "2718281").reason == "wrong_code"  # Duo: used up
    assert failures(duo_ctx) == 1

    duo.users["alice"].push_answer = "deny"
    assert service.verify("alice", "push").reason == "wrong_code"
    # An unanswered push counts too: pushes cannot be sent to someone's phone without limit.
    duo.users["alice"].push_answer = "timeout"
    assert service.verify("alice", "push").reason == "wrong_code"
    assert failures(duo_ctx) == 3
    for _ in range(2):
        last = service.verify("alice", "push")
    assert last.locked_now
    sent = len(duo.requests)
    assert service.verify("alice", "push").reason == "locked"
    assert len(duo.requests) == sent  # locked: Duo is not even asked


def test_a_backup_code_or_a_typo_never_reaches_duo(duo_ctx: Context, duo: DuoStandIn) -> None:
    enroll(duo_ctx)
    codes = MfaService(duo_ctx).generate_backup_codes(CLI, "alice")
    duo.fail_status = 503  # even with Duo down, a backup code works
    sent = len(duo.requests)
    outcome = MfaService(duo_ctx).verify("alice", codes[0])
    assert outcome.accepted and outcome.method == "backup_code"
    assert MfaService(duo_ctx).verify("alice", "pish").reason == "wrong_code"
    # Digits of other scripts are no passcode: refused here, never sent.
    for digits in ("１２３４５６", "١٢٣٤٥٦", "१२३४५६"):
        assert MfaService(duo_ctx).verify("alice", digits).reason == "wrong_code", digits
    assert len(duo.requests) == sent


def test_duo_failures_are_unavailable_not_counted(sqlite_ctx: Context, duo: DuoStandIn) -> None:
    enroll(sqlite_ctx)
    service = MfaService(sqlite_ctx)
    duo.fail_status = 503
    outcome = service.verify("alice", "push")
    assert (outcome.reason, outcome.message) == (
        "unavailable",
        f"Duo at {duo.host} answered with an error (HTTP 503); try again later.",
    )
    duo.fail_status = None

    SettingsStore(sqlite_ctx).set_many(CLI, {"duo.timeout": "1"})
    duo.delay = 5
    outcome = service.verify("alice", "314159")
    assert outcome.message == f"Duo at {duo.host} did not answer within 1 s; try again later."
    duo.delay = 0

    outcome = service.verify("alice", "push 3")  # two devices take a push
    assert outcome.reason == "unavailable" and "There is no Duo device 3" in outcome.message
    assert failures(sqlite_ctx) == 0
    assert service.verify("alice", "314159").accepted  # and the user is not locked out


def test_an_unreachable_host_is_unavailable(sqlite_ctx: Context, duo: DuoStandIn) -> None:
    enroll(sqlite_ctx)
    SettingsStore(sqlite_ctx).set_many(CLI, {"duo.api_host": "localhost:9"})
    outcome = MfaService(sqlite_ctx).verify("alice", "push")
    assert outcome.reason == "unavailable"
    assert outcome.message.startswith("Duo at localhost:9 cannot be reached (")
    assert failures(sqlite_ctx) == 0


def test_a_user_not_enrolled_at_duo_is_told_to_enroll_first(
    sqlite_ctx: Context, duo: DuoStandIn
) -> None:
    duo.users["alice"].result = "enroll"
    service = MfaService(sqlite_ctx)
    start = service.begin_enrollment(CLI, "alice", "duo")
    assert "alice is not enrolled with Duo yet: enroll with Duo first at https://" in (
        start.instructions
    )
    with pytest.raises(ProviderUnavailable, match="enroll with Duo first"):
        service.confirm_code(CLI, start.credential_id, "push")
    assert duo.calls("/auth/v2/auth") == []

    duo.users["alice"].result = "auth"  # enrolled at Duo meanwhile: the same enrollment goes on
    assert service.confirm_code(CLI, start.credential_id, "push")


def test_bypass_and_deny_at_preauth(sqlite_ctx: Context, duo: DuoStandIn) -> None:
    service = MfaService(sqlite_ctx)
    duo.users["alice"].result = "allow"
    start = service.begin_enrollment(CLI, "alice", "duo")
    with pytest.raises(ProviderUnavailable, match="without a second factor"):
        service.confirm_code(CLI, start.credential_id, "push")
    duo.users["alice"].result = "auth"
    assert service.confirm_code(CLI, start.credential_id, "push")
    service.activate(CLI, "alice", start.credential_id)

    # At login Duo's administrator decides: a bypass lets the user in, a deny is a failure.
    duo.users["alice"].result = "allow"
    assert service.verify("alice", "push").accepted
    duo.users["alice"].result = "deny"
    duo.users["alice"].status_msg = "Your account is disabled"
    assert "Duo refuses alice (Your account is disabled)" in (service.send_challenge("alice") or "")
    assert service.verify("alice", "push").reason == "wrong_code"
    assert failures(sqlite_ctx) == 1


def test_the_secret_key_is_not_in_the_sqlite_files(sqlite_ctx: Context, duo: DuoStandIn) -> None:
    enroll(sqlite_ctx)
    database = Path(str(sqlite_ctx.db.engine.url.database))
    files = [database, Path(f"{database}-wal")]
    haystack = b"".join(path.read_bytes() for path in files if path.exists())
    assert duo.ikey.encode() in haystack  # not a secret: proves the settings are in these bytes
    assert duo.skey.encode() not in haystack
    assert duo.skey.encode("utf-16-le") not in haystack


# The command line ----------------------------------------------------------------------------------


@pytest.fixture
def cli(
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    duo: DuoStandIn,
) -> Cli:
    """A database with root and alice, Duo set through ``settings set`` (the key on stdin)."""
    cheap = PasswordHasher(
        time_cost=1, memory_cost=8, parallelism=1
    )  # root's password: not the point
    monkeypatch.setattr(passwords, "hasher", lambda: cheap)
    for name in ("MFA_TUI_DATABASE_URL", "MFA_TUI_KEY_FILE", "MFA_TUI_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    runner = Cli(sqlite_url, tmp_path / "secret.key", monkeypatch, capsys)
    runner.init()
    runner.ok("users", "add", "alice")
    for key, value in duo.settings().items():
        if key == "duo.secret_key":
            runner.ok("settings", "set", key, "--value-stdin", stdin=value + "\n")
        else:
            runner.ok("settings", "set", key, value)
    runner.ok("settings", "set", "mfa.supported", "totp,duo")
    context = runner.context()
    try:
        enroll(context)
    finally:
        context.close()
    return runner


def test_cli_verify_push_and_passcode(cli: Cli, duo: DuoStandIn) -> None:
    shown = cli.ok("settings", "show").out
    assert duo.skey not in shown
    sent = cli.ok("verify", "alice", "--send", stdin="push 2\n")
    assert "1: iOS (XXX-XXX-1111), 2: Android (XXX-XXX-2222)" in sent.err
    assert duo.calls("/auth/v2/auth")[-1].params["device"] == ANDROID
    cli.ok("verify", "alice", stdin="314159\n")

    duo.users["alice"].push_answer = "deny"
    assert_one_error_line(cli("verify", "alice", stdin="push\n"), 1, "not accepted")


def test_cli_set_mfa_configures_duo_now_with_push_2(cli: Cli, duo: DuoStandIn) -> None:
    cli.ok("users", "add", "bob")
    duo.users["bob"] = DuoUser(devices=duo.users["alice"].devices)
    result = cli.ok("users", "set-mfa", "bob", "--type", "duo", stdin="push 2\n")
    assert "bob: duo, configured." in result.out
    push = duo.calls("/auth/v2/auth")[-1]
    assert (push.params["username"], push.params["device"]) == ("bob", ANDROID)
    assert push.params["type"] == "mfa-tui setup"
    assert cli.users()["bob"]["mfa_status"] == "configured"


def test_cli_verify_with_duo_down_exits_3_with_the_reason(cli: Cli, duo: DuoStandIn) -> None:
    duo.fail_status = 502
    result = cli("verify", "alice", stdin="push\n")
    assert_one_error_line(result, 3, f"Duo at {duo.host} answered with an error (HTTP 502)")
    duo.fail_status = None
    context = cli.context()
    try:
        assert failures(context) == 0
    finally:
        context.close()
    cli.ok("verify", "alice", stdin="push\n")
