"""The RADIUS factor against a real FreeRADIUS: Accept, Reject, Access-Challenge with State,
failover, Blast-RADIUS refusal of unsigned or badly signed replies, provider failures not counted,
the CLI's two-prompt verify, and the shared secrets absent from the database file."""

from __future__ import annotations

import hashlib
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from mfa_tui.core import lockout
from mfa_tui.core.access import Actor
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.config import Config
from mfa_tui.core.context import Context, open_context
from mfa_tui.core.factors import ChallengeRequired, FactorEnv, Proof, ProviderUnavailable
from mfa_tui.core.factors.radius import RadiusFactor
from mfa_tui.core.models import MfaCredential, User
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import UserService
from tests.helpers import freeradius
from tests.helpers.freeradius import RadiusServer


@pytest.fixture(scope="module")
def radius() -> Iterator[RadiusServer]:
    yield from freeradius.start_freeradius()


@pytest.fixture
def closed_port(refused_udp_port: int) -> int:
    """Nothing listens there: the kernel answers ICMP port unreachable."""
    return refused_udp_port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A socket that never answers: only the timeout ends the wait."""
    yield from freeradius.silent_udp_port()


def configure(ctx: Context, **values: object) -> None:
    raw = {"mfa.supported": "totp,radius"}
    raw.update({f"radius.{key}": str(value) for key, value in values.items()})
    SettingsStore(ctx).set_many(Actor.cli(), raw)


def use(ctx: Context, server: RadiusServer, **extra: object) -> None:
    configure(ctx, server=server.host, port=server.port, secret=server.secret, timeout=2, **extra)


def env_for(ctx: Context, state: str | None = None) -> FactorEnv:
    return FactorEnv(ctx, SettingsStore(ctx).load(), ctx.clock.now(), challenge_state=state)


def user_row(ctx: Context, username: str) -> User:
    return UserService(ctx).user_row(UserService(ctx).get(username).id)


def radius_credential(ctx: Context, username: str) -> MfaCredential:
    user = user_row(ctx, username)
    return MfaCredential(id="c" * 32, user_id=user.id, type="radius", state="active")  # type: ignore[arg-type]


def enroll(ctx: Context, username: str, passcode: str) -> None:
    service = MfaService(ctx)
    start = service.begin_enrollment(Actor.cli(), username, "radius")
    assert service.confirm_code(Actor.cli(), start.credential_id, passcode)
    service.activate(Actor.cli(), username, start.credential_id)


def failures(ctx: Context, username: str) -> int:
    with ctx.db.read() as session:
        row = session.get(lockout.Lockout, UserService(ctx).get(username).id)
        return row.failed_attempts if row else 0


# The wire protocol, against FreeRADIUS ---------------------------------------------------------


@pytest.fixture
def sqlite_ctx(tmp_path: Path, clock: FixedClock) -> Iterator[Context]:
    context = open_context(
        Config(database_url=f"sqlite:///{tmp_path / 'mfa.db'}", key_file=tmp_path / "k"), clock
    )
    for name in ("alice", "bob", "carol", "nomac", "alice@example.com"):
        UserService(context).create(Actor.cli(), name)
    yield context
    context.close()


def test_accept_reject_and_signed_requests(sqlite_ctx: Context, radius: RadiusServer) -> None:
    """The server demands a Message-Authenticator on requests, so an Accept proves we send one."""
    use(sqlite_ctx, radius)
    factor = RadiusFactor()
    alice = user_row(sqlite_ctx, "alice")
    credential = radius_credential(sqlite_ctx, "alice")
    assert factor.verify(env_for(sqlite_ctx), credential, alice, "alice-pass") == Proof()
    assert factor.verify(env_for(sqlite_ctx), credential, alice, "wrong-pass") is None
    bob = user_row(sqlite_ctx, "bob")
    assert (
        factor.verify(env_for(sqlite_ctx), radius_credential(sqlite_ctx, "bob"), bob, "x") is None
    )
    assert "Login OK: [alice" in radius.log.read_text()


def test_reply_without_message_authenticator_is_refused(
    sqlite_ctx: Context, radius: RadiusServer
) -> None:
    """FreeRADIUS accepts 'nomac' but leaves out the Message-Authenticator: never an accept."""
    use(sqlite_ctx, radius)
    nomac = user_row(sqlite_ctx, "nomac")
    with pytest.raises(ProviderUnavailable, match="without a valid Message-Authenticator"):
        RadiusFactor().verify(
            env_for(sqlite_ctx), radius_credential(sqlite_ctx, "nomac"), nomac, "nomac-pass"
        )
    assert "Login OK: [nomac" in radius.log.read_text()  # the server did accept


def test_access_challenge_then_state(sqlite_ctx: Context, radius: RadiusServer) -> None:
    use(sqlite_ctx, radius)
    factor = RadiusFactor()
    carol = user_row(sqlite_ctx, "carol")
    credential = radius_credential(sqlite_ctx, "carol")
    with pytest.raises(ChallengeRequired) as raised:
        factor.verify(env_for(sqlite_ctx), credential, carol, "carol-pass")
    challenge = raised.value
    assert challenge.prompt == freeradius.CHALLENGE_PROMPT
    # The State travels sealed: the server's bytes are not readable by the caller.
    assert b"mfa-tui".hex() not in challenge.state
    assert (
        factor.verify(env_for(sqlite_ctx, "00" + challenge.state[2:]), credential, carol, "424242")
        is None
    )
    assert factor.verify(env_for(sqlite_ctx, challenge.state), credential, carol, "000000") is None
    assert (
        factor.verify(env_for(sqlite_ctx, challenge.state), credential, carol, "424242") == Proof()
    )
    # Sealed to this credential: another credential cannot use it.
    other = MfaCredential(id="d" * 32, user_id=carol.id, type="radius", state="active")  # type: ignore[arg-type]
    assert factor.verify(env_for(sqlite_ctx, challenge.state), other, carol, "424242") is None


def test_strip_domain(sqlite_ctx: Context, radius: RadiusServer) -> None:
    use(sqlite_ctx, radius, strip_domain="true")
    user = user_row(sqlite_ctx, "alice@example.com")
    credential = radius_credential(sqlite_ctx, "alice@example.com")
    assert RadiusFactor().verify(env_for(sqlite_ctx), credential, user, "alice-pass") == Proof()
    use(sqlite_ctx, radius, strip_domain="false")
    assert RadiusFactor().verify(env_for(sqlite_ctx), credential, user, "alice-pass") is None


def test_failover_when_nothing_listens(
    sqlite_ctx: Context, radius: RadiusServer, closed_port: int
) -> None:
    configure(
        sqlite_ctx,
        server="127.0.0.1",
        port=closed_port,
        secret="primary-secret-9d1",
        timeout=2,
        failover_server=radius.host,
        failover_port=radius.port,
        failover_secret=radius.secret,
    )
    alice = user_row(sqlite_ctx, "alice")
    credential = radius_credential(sqlite_ctx, "alice")
    assert RadiusFactor().verify(env_for(sqlite_ctx), credential, alice, "alice-pass") == Proof()


def test_failover_after_timeout(
    sqlite_ctx: Context, radius: RadiusServer, silent_port: int
) -> None:
    configure(
        sqlite_ctx,
        server="127.0.0.1",
        port=silent_port,
        secret=radius.secret,
        timeout=1,
        failover_server=radius.host,
        failover_port=radius.port,
    )
    alice = user_row(sqlite_ctx, "alice")
    credential = radius_credential(sqlite_ctx, "alice")
    # The failover secret defaults to the primary one when left empty.
    assert RadiusFactor().verify(env_for(sqlite_ctx), credential, alice, "alice-pass") == Proof()


def test_no_server_answers(sqlite_ctx: Context, radius: RadiusServer, closed_port: int) -> None:
    configure(
        sqlite_ctx,
        server="127.0.0.1",
        port=radius.port,
        secret="not-the-shared-secret",
        timeout=1,
        failover_server="127.0.0.1",
        failover_port=closed_port,
    )
    alice = user_row(sqlite_ctx, "alice")
    with pytest.raises(ProviderUnavailable) as raised:
        RadiusFactor().verify(
            env_for(sqlite_ctx), radius_credential(sqlite_ctx, "alice"), alice, "alice-pass"
        )
    message = str(raised.value)
    assert f"127.0.0.1:{radius.port} did not answer within 1 s" in message
    assert "shared secret" in message
    assert f"127.0.0.1:{closed_port} is unreachable" in message
    assert "\n" not in message
    # Both servers in one sentence: a capital first, one full stop, at the end.
    assert message[0].isupper() and message.count(". ") == 0 and message.endswith("administrator.")


def test_not_configured(sqlite_ctx: Context) -> None:
    configure(sqlite_ctx)
    with pytest.raises(ProviderUnavailable, match="RADIUS is not set up"):
        MfaService(sqlite_ctx).begin_enrollment(Actor.cli(), "alice", "radius")
    assert UserService(sqlite_ctx).get("alice").mfa_status == "none"
    alice = user_row(sqlite_ctx, "alice")
    with pytest.raises(ProviderUnavailable, match="RADIUS is not set up"):
        RadiusFactor().verify(
            env_for(sqlite_ctx), radius_credential(sqlite_ctx, "alice"), alice, "x"
        )


def test_test_settings(sqlite_ctx: Context, radius: RadiusServer) -> None:
    use(sqlite_ctx, radius)
    sentence = RadiusFactor().test_settings(env_for(sqlite_ctx), user_row(sqlite_ctx, "alice"))
    assert sentence.startswith(f"The RADIUS server 127.0.0.1:{radius.port} answered")
    assert "Access-Reject" in sentence
    assert (
        "Login incorrect" in radius.log.read_text()
        and "mfa-tui-settings-test" in radius.log.read_text()
    )
    configure(sqlite_ctx, secret="wrong-secret", timeout=1)
    with pytest.raises(ProviderUnavailable, match="did not answer within 1 s"):
        RadiusFactor().test_settings(env_for(sqlite_ctx), user_row(sqlite_ctx, "alice"))


# Our own checks of a reply, against a stand-in that signs badly ---------------------------------


def _forging_server(secret: bytes) -> Iterator[int]:
    """Answers every request with an Access-Accept whose Response Authenticator is right (it knows
    the secret) but whose Message-Authenticator is garbage."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            identifier, authenticator = data[1], data[4:20]
            attributes = bytes([80, 18]) + b"\x11" * 16
            header = struct.pack("!BBH", 2, identifier, 20 + len(attributes))
            response = hashlib.md5(header + authenticator + attributes + secret).digest()
            sock.sendto(header + response + attributes, peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=2)
        sock.close()


def test_wrong_message_authenticator_is_refused(sqlite_ctx: Context) -> None:
    secret = "stand-in-secret"
    for port in _forging_server(secret.encode()):
        configure(sqlite_ctx, server="127.0.0.1", port=port, secret=secret, timeout=1)
        alice = user_row(sqlite_ctx, "alice")
        with pytest.raises(ProviderUnavailable, match="wrong Message-Authenticator"):
            RadiusFactor().verify(
                env_for(sqlite_ctx), radius_credential(sqlite_ctx, "alice"), alice, "anything"
            )


# Through the service, on SQLite and PostgreSQL ------------------------------------------------


@pytest.fixture
def people(ctx: Context, radius: RadiusServer) -> Context:
    for name in ("alice", "carol"):
        UserService(ctx).create(Actor.cli(), name)
    use(ctx, radius)
    return ctx


def test_service_enroll_and_login(people: Context) -> None:
    service = MfaService(people)
    start = service.begin_enrollment(Actor.cli(), "alice", "radius")
    assert start.provisioning_uri is None and "'alice'" in start.instructions
    assert not service.confirm_code(Actor.cli(), start.credential_id, "wrong-pass")
    assert service.confirm_code(Actor.cli(), start.credential_id, "alice-pass")
    service.activate(Actor.cli(), "alice", start.credential_id)
    assert UserService(people).get("alice").mfa_status == "configured"

    assert service.verify("alice", "alice-pass").reason == "accepted"
    # No counter: a RADIUS passcode's single use is the RADIUS server's business.
    assert service.verify("alice", "alice-pass").accepted
    outcome = service.verify("alice", "wrong-pass")
    assert (outcome.accepted, outcome.reason) == (False, "wrong_code")
    assert failures(people, "alice") == 1


def test_service_challenge_round_trip(people: Context) -> None:
    freeradius.enroll_challenge_user(people, "carol")
    service = MfaService(people)
    first = service.verify("carol", "carol-pass")
    assert (first.accepted, first.reason) == (False, "challenge")
    assert first.message == freeradius.CHALLENGE_PROMPT and first.state
    assert failures(people, "carol") == 0  # the first round was right: nothing counted
    wrong = service.verify("carol", "999999", state=first.state)
    assert wrong.reason == "wrong_code" and failures(people, "carol") == 1
    again = service.verify("carol", "carol-pass")
    second = service.verify("carol", freeradius.CHALLENGE_CODE, state=again.state)
    assert (second.accepted, second.method) == (True, "radius")
    assert failures(people, "carol") == 0


def test_enrollment_with_a_second_prompt(people: Context) -> None:
    """The enrollment screens send one code at a time: the State waits, sealed, on the verifying
    credential; a wrong answer starts over; nothing of it stays on the active credential."""
    service = MfaService(people)
    start = service.begin_enrollment(Actor.cli(), "carol", "radius")

    def stored() -> bytes | None:
        with people.db.read() as session:
            credential = session.get(MfaCredential, start.credential_id)
            assert credential is not None
            return credential.secret

    with pytest.raises(ChallengeRequired, match=freeradius.CHALLENGE_PROMPT):
        service.confirm_code(Actor.cli(), start.credential_id, "carol-pass")
    sealed = stored()
    assert sealed and b"mfa-tui" not in sealed
    assert not service.confirm_code(Actor.cli(), start.credential_id, "000000")
    assert stored() is None  # refused: the next passcode is a first round again
    assert not service.confirm_code(Actor.cli(), start.credential_id, freeradius.CHALLENGE_CODE)
    with pytest.raises(ChallengeRequired):
        service.confirm_code(Actor.cli(), start.credential_id, "carol-pass")
    assert service.confirm_code(Actor.cli(), start.credential_id, freeradius.CHALLENGE_CODE)
    service.activate(Actor.cli(), "carol", start.credential_id)
    assert stored() is None


def test_provider_failure_is_not_counted(people: Context, closed_port: int) -> None:
    enroll(people, "alice", "alice-pass")
    configure(people, port=closed_port, timeout=1)
    settings = SettingsStore(people).load()
    for _ in range(settings["lockout.attempts"] + 2):
        outcome = MfaService(people).verify("alice", "alice-pass")
        assert outcome.reason == "unavailable"
        assert f"127.0.0.1:{closed_port} is unreachable" in outcome.message
    assert failures(people, "alice") == 0
    configure(people, port=SettingsStore(people).load()["radius.port"])


# The shared secrets at rest -------------------------------------------------------------------


def test_secrets_absent_from_database_file(
    tmp_path: Path, clock: FixedClock, radius: RadiusServer
) -> None:
    path = tmp_path / "mfa.db"
    context = open_context(Config(f"sqlite:///{path}", tmp_path / "key"), clock)
    try:
        UserService(context).create(Actor.cli(), "alice")
        configure(
            context,
            server=radius.host,
            port=radius.port,
            secret=radius.secret,
            failover_server=radius.host,
            failover_port=radius.port,
            failover_secret="failover-secret-5e2b",
            timeout=2,
        )
        enroll(context, "alice", "alice-pass")
        first = MfaService(context).verify("alice", "alice-pass")
        assert first.accepted
        with context.db.read() as session:
            assert session.execute(select(MfaCredential.type)).scalars().all() == ["radius"]
    finally:
        context.close()
    data = b"".join(p.read_bytes() for p in tmp_path.glob("mfa.db*"))
    for needle in (radius.secret, "failover-secret-5e2b", "alice-pass"):
        assert needle.encode() not in data
        assert needle.encode("utf-16-le") not in data
    assert b"radius" in data  # the file is the one written


# The CLI: two prompts -----------------------------------------------------------------------------


@pytest.fixture
def radius_cli(
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    radius: RadiusServer,
    clock: FixedClock,
):  # type: ignore[no-untyped-def]
    from tests.cli.conftest import Cli

    for name in ("MFA_TUI_DATABASE_URL", "MFA_TUI_KEY_FILE", "MFA_TUI_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    cli = Cli(sqlite_url, tmp_path / "secret.key", monkeypatch, capsys)
    context = cli.context(clock)
    try:
        for name in ("alice", "carol"):
            UserService(context).create(Actor.cli(), name)
        use(context, radius)
        enroll(context, "alice", "alice-pass")
        freeradius.enroll_challenge_user(context, "carol")
    finally:
        context.close()
    return cli


def test_cli_verify(radius_cli) -> None:  # type: ignore[no-untyped-def]
    accepted = radius_cli("verify", "alice", stdin="alice-pass\n")
    assert accepted.code == 0, accepted
    refused = radius_cli("verify", "alice", stdin="wrong-pass\n")
    assert refused.code == 1 and "not accepted" in refused.err


def test_cli_verify_challenge_reads_a_second_line(radius_cli) -> None:  # type: ignore[no-untyped-def]
    result = radius_cli("verify", "carol", stdin=f"carol-pass\n{freeradius.CHALLENGE_CODE}\n")
    assert result.code == 0, result
    assert freeradius.CHALLENGE_PROMPT in result.err
    wrong = radius_cli("verify", "carol", stdin="carol-pass\n000000\n")
    assert wrong.code == 1 and freeradius.CHALLENGE_PROMPT in wrong.err
    missing = radius_cli("verify", "carol", stdin="carol-pass\n")
    assert missing.code == 2 and "empty" in missing.err


def test_cli_verify_provider_failure_exits_3(
    radius_cli, closed_port: int, clock: FixedClock
) -> None:  # type: ignore[no-untyped-def]
    context = radius_cli.context(clock)
    try:
        configure(context, port=closed_port, timeout=1)
    finally:
        context.close()
    result = radius_cli("verify", "alice", stdin="alice-pass\n")
    assert result.code == 3, result
    assert f"127.0.0.1:{closed_port} is unreachable" in result.err
    assert "Traceback" not in result.err
