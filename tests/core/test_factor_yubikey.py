"""Yubikey (Yubico OTP) through the one factor protocol, with real OTPs (yubiotp: AES-128, CRC,
modhex) on SQLite and PostgreSQL.

Local mode decrypts OTPs with the AES key typed at enrollment (stored encrypted) and lets each
counter through once; server mode talks the YubiCloud 2.0 protocol to a stand-in on 127.0.0.1 that
checks signatures and refuses replays itself.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from mfa_tui.core.access import Actor
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.config import Config
from mfa_tui.core.context import Context, open_context
from mfa_tui.core.errors import InputError, StorageError
from mfa_tui.core.factors import (
    EnrollmentStart,
    FactorEnv,
    ProviderUnavailable,
    enrollment_code,
    factor_for,
    split_enrollment_code,
)
from mfa_tui.core.factors.yubikey import parse_response, signature
from mfa_tui.core.models import Lockout, MfaCredential, MfaStatus, User
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import UserService
from tests.helpers.yubico_standin import (
    SimulatedYubikey,
    YubicoStandin,
    closed_port_url,
    running_standin,
)


@pytest.fixture
def standin() -> Iterator[YubicoStandin]:
    with running_standin() as server:
        yield server


def use_local(ctx: Context) -> None:
    SettingsStore(ctx).set_many(
        Actor.cli(), {"mfa.supported": "totp,yubikey", "yubikey.mode": "local"}
    )


def use_server(ctx: Context, standin: YubicoStandin, *, url: str | None = None) -> None:
    SettingsStore(ctx).set_many(
        Actor.cli(),
        {
            "mfa.supported": "totp,yubikey",
            "yubikey.mode": "server",
            "yubikey.server_url": url or standin.url,
            "yubikey.client_id": standin.client_id,
            "yubikey.api_key": standin.api_key_b64,
        },
    )


def begin(ctx: Context, name: str = "bob") -> EnrollmentStart:
    UserService(ctx).create(Actor.cli(), name)
    return MfaService(ctx).begin_enrollment(Actor.cli(), name, "yubikey")


def enroll_local(ctx: Context, key: SimulatedYubikey, name: str = "bob") -> None:
    start = begin(ctx, name)
    code = enrollment_code(key.touch(), key.enrollment_fields())
    assert MfaService(ctx).confirm_code(Actor.cli(), start.credential_id, code)
    MfaService(ctx).activate(Actor.cli(), name, start.credential_id)


def credential_of(ctx: Context) -> MfaCredential:
    with ctx.db.read() as session:
        return session.exec(select(MfaCredential)).one()


def attempts(ctx: Context, name: str = "bob") -> int:
    with ctx.db.read() as session:
        user = session.exec(select(User).where(User.username_key == name)).one()
        row = session.get(Lockout, user.id)
        return 0 if row is None else row.failed_attempts


# The code string an enrollment with extra fields carries ------------------------------------------


def test_a_plain_code_stays_plain_and_fields_travel_as_json() -> None:
    assert enrollment_code("123456", {}) == "123456"
    assert split_enrollment_code("123456") == ("123456", {})
    packed = enrollment_code("cccc", {"aes_key": "00 11", "private_id": "ab"})
    assert json.loads(packed) == {
        "code": "cccc",
        "fields": {"aes_key": "00 11", "private_id": "ab"},
    }
    assert split_enrollment_code(packed) == ("cccc", {"aes_key": "00 11", "private_id": "ab"})
    # Anything else that starts like JSON is just a (wrong) code, never an error.
    assert split_enrollment_code('{"code": 1}') == ('{"code": 1}', {})
    assert split_enrollment_code("{nope") == ("{nope", {})


def test_our_client_and_the_standin_agree_with_an_independent_protocol_client(
    standin: YubicoStandin,
) -> None:
    """yubiotp's own 2.0 client signs requests as we do and accepts the stand-in's answers."""
    from yubiotp.client import YubiClient20, param_signature

    params = {"id": "1", "otp": "vvungrrdhvtklknvrtvuvbbkeidikkvgglrvdgrfcdft", "nonce": "abc123"}
    expected = base64.b64encode(param_signature(list(params.items()), b"k3y")).decode()
    assert signature(params, b"k3y") == expected

    key = standin.register(SimulatedYubikey())
    client = YubiClient20(int(standin.client_id), standin.api_key, timestamp=True)
    client.base_url = standin.url
    otp = key.touch()
    answer = client.verify(otp)
    assert answer.is_ok() and answer.is_signature_valid()
    assert answer.fields["sessioncounter"] == "1" and answer.fields["sessionuse"] == "0"
    assert client.verify(otp).status() == "REPLAYED_OTP"
    assert parse_response("h=a+b=\r\nstatus=OK\r\n") == {"h": "a+b=", "status": "OK"}


# Local mode ------------------------------------------------------------------------------------------


def test_local_enrollment_binds_the_key_and_stores_its_secret_encrypted(ctx: Context) -> None:
    use_local(ctx)
    key = SimulatedYubikey()
    start = begin(ctx)
    assert [field.name for field in start.fields] == ["aes_key", "private_id"]
    assert all(field.secret for field in start.fields)
    assert start.provisioning_uri is None

    code = enrollment_code(key.touch(), key.enrollment_fields())
    assert MfaService(ctx).confirm_code(Actor.cli(), start.credential_id, code)
    MfaService(ctx).activate(Actor.cli(), "bob", start.credential_id)

    stored = credential_of(ctx)
    assert json.loads(stored.device_data or "") == {"public_id": key.public_id}
    assert stored.secret is not None and key.aes_key not in stored.secret
    assert (
        ctx.box.decrypt(stored.secret, table="mfa_credentials", row_id=stored.id, field="secret")
        == key.aes_key + key.private_id
    )
    assert stored.last_used_step == 1 * 256 + 0  # usage 1, first touch of the session
    assert UserService(ctx).get("bob").mfa_status == MfaStatus.CONFIGURED


def test_local_login_accepts_the_next_touch_once_and_refuses_replays(ctx: Context) -> None:
    use_local(ctx)
    key = SimulatedYubikey()
    enroll_local(ctx, key)
    service = MfaService(ctx)

    otp = key.touch()
    assert service.verify("bob", otp).accepted
    replay = service.verify("bob", otp)
    assert (replay.accepted, replay.reason) == (False, "wrong_code")
    # Upper case (a Caps Lock) is the same OTP: still a replay.
    assert not service.verify("bob", otp.upper()).accepted
    assert service.verify("bob", key.touch()).accepted


def test_local_counters_must_go_up(ctx: Context) -> None:
    use_local(ctx)
    key = SimulatedYubikey(usage=5)
    enroll_local(ctx, key)
    service = MfaService(ctx)

    older, newer = key.touch(), key.touch()
    assert service.verify("bob", newer).accepted
    assert not service.verify("bob", older).accepted  # never used, but its counter is behind

    key.plug_in_again()  # usage 6, session 0: above usage 5, session 2
    assert service.verify("bob", key.touch()).accepted
    assert credential_of(ctx).last_used_step == 6 * 256 + 0


def test_the_enrollment_touch_is_spent(ctx: Context) -> None:
    use_local(ctx)
    key = SimulatedYubikey()
    start = begin(ctx)
    first = key.touch()
    assert MfaService(ctx).confirm_code(
        Actor.cli(), start.credential_id, enrollment_code(first, key.enrollment_fields())
    )
    MfaService(ctx).activate(Actor.cli(), "bob", start.credential_id)
    assert not MfaService(ctx).verify("bob", first).accepted


def test_local_login_refuses_another_key_and_garbage(ctx: Context) -> None:
    use_local(ctx)
    SettingsStore(ctx).set_many(Actor.cli(), {"lockout.attempts": "10"})
    key = SimulatedYubikey()
    enroll_local(ctx, key)
    service = MfaService(ctx)

    # Another key, even one sharing the AES key and private id, has another public id.
    twin = SimulatedYubikey(aes_key=key.aes_key, private_id=key.private_id, usage=9)
    assert not service.verify("bob", twin.touch()).accepted
    # The right public id in front of a token made with another AES key: the CRC fails.
    forged = SimulatedYubikey(public_id=key.public_id, private_id=key.private_id, usage=9)
    assert not service.verify("bob", forged.touch()).accepted
    # The right public id and AES key, another private id.
    other_uid = SimulatedYubikey(public_id=key.public_id, aes_key=key.aes_key, usage=9)
    assert not service.verify("bob", other_uid.touch()).accepted
    for junk in ("123456", "", "x" * 44, key.public_id):
        assert not service.verify("bob", junk).accepted
    assert attempts(ctx) == 7  # every refusal counted toward the lockout
    assert service.verify("bob", key.touch()).accepted


def test_local_enrollment_refuses_a_wrong_key_and_explains_a_malformed_one(
    ctx: Context,
) -> None:
    use_local(ctx)
    key = SimulatedYubikey()
    start = begin(ctx)
    service = MfaService(ctx)

    wrong = {**key.enrollment_fields(), "aes_key": "00" * 16}
    assert not service.confirm_code(
        Actor.cli(), start.credential_id, enrollment_code(key.touch(), wrong)
    )
    with pytest.raises(InputError, match="AES key is 32 hexadecimal"):
        service.confirm_code(
            Actor.cli(),
            start.credential_id,
            enrollment_code(key.touch(), {**key.enrollment_fields(), "aes_key": "abc"}),
        )
    with pytest.raises(InputError, match="private ID is 12 hexadecimal"):
        service.confirm_code(
            Actor.cli(),
            start.credential_id,
            enrollment_code(key.touch(), {"aes_key": key.aes_key_hex}),
        )
    assert credential_of(ctx).secret is None  # nothing stored by a failed try
    # Spaces inside the hex, as printed by the personalization tool, are fine.
    spaced = {
        "aes_key": " ".join(key.aes_key_hex[i : i + 2] for i in range(0, 32, 2)),
        "private_id": key.private_id_hex.upper(),
    }
    assert service.confirm_code(
        Actor.cli(), start.credential_id, enrollment_code(key.touch(), spaced)
    )


def test_a_local_secret_is_bound_to_its_row(ctx: Context) -> None:
    """The sealed AES key cannot be moved to another user's credential."""
    use_local(ctx)
    key = SimulatedYubikey()
    enroll_local(ctx, key, "bob")
    bob = credential_of(ctx)
    start = begin(ctx, "mallory")
    with ctx.db.write() as session:
        other = session.get(MfaCredential, start.credential_id)
        assert other is not None
        other.secret = bob.secret
        other.device_data = bob.device_data
    with pytest.raises(StorageError):
        MfaService(ctx).confirm_code(Actor.cli(), start.credential_id, key.touch())


# Server mode -----------------------------------------------------------------------------------------


def enroll_server(ctx: Context, standin: YubicoStandin, key: SimulatedYubikey) -> None:
    use_server(ctx, standin)
    start = begin(ctx)
    assert start.fields == ()
    assert MfaService(ctx).confirm_code(Actor.cli(), start.credential_id, key.touch())
    MfaService(ctx).activate(Actor.cli(), "bob", start.credential_id)


def test_server_mode_accepts_the_key_and_the_server_refuses_a_replay(
    ctx: Context, standin: YubicoStandin
) -> None:
    key = standin.register(SimulatedYubikey())
    enroll_server(ctx, standin, key)
    stored = credential_of(ctx)
    assert stored.secret is None  # nothing secret of the key is kept in server mode
    assert json.loads(stored.device_data or "") == {"public_id": key.public_id}

    service = MfaService(ctx)
    otp = key.touch()
    assert service.verify("bob", otp).accepted
    # Every request was signed and carried a fresh nonce (the stand-in checked the signature).
    assert [request["otp"] for request in standin.requests][-1] == otp
    assert len({request["nonce"] for request in standin.requests}) == len(standin.requests)

    answered = len(standin.requests)
    replay = service.verify("bob", otp)
    assert (replay.accepted, replay.reason) == (False, "wrong_code")
    assert len(standin.requests) == answered + 1  # the server itself said REPLAYED_OTP
    assert service.verify("bob", key.touch()).accepted


def test_server_mode_refuses_another_key_without_asking(
    ctx: Context, standin: YubicoStandin
) -> None:
    key = standin.register(SimulatedYubikey())
    other = standin.register(SimulatedYubikey())  # valid at the server, but not bob's
    enroll_server(ctx, standin, key)
    asked = len(standin.requests)
    assert not MfaService(ctx).verify("bob", other.touch()).accepted
    assert len(standin.requests) == asked


def test_server_mode_refuses_an_answer_with_a_bad_signature_without_counting_it(
    ctx: Context, standin: YubicoStandin
) -> None:
    key = standin.register(SimulatedYubikey())
    enroll_server(ctx, standin, key)
    standin.answer_key = b"not the api key"
    outcome = MfaService(ctx).verify("bob", key.touch())
    assert (outcome.accepted, outcome.reason) == (False, "unavailable")
    assert "not signed with yubikey.api_key" in (outcome.detail or "")
    assert attempts(ctx) == 0


def test_server_mode_refuses_an_answer_about_another_nonce(
    ctx: Context, standin: YubicoStandin
) -> None:
    key = standin.register(SimulatedYubikey())
    enroll_server(ctx, standin, key)
    standin.answer_nonce = "an0ldn0nce0fr0mam0rec0rdedanswer"
    outcome = MfaService(ctx).verify("bob", key.touch())
    assert (outcome.accepted, outcome.reason) == (False, "unavailable")
    assert "another request" in (outcome.detail or "")


def test_server_down_is_unavailable_and_never_locks(
    ctx: Context, standin: YubicoStandin, refused_port: int
) -> None:
    key = standin.register(SimulatedYubikey())
    enroll_server(ctx, standin, key)
    SettingsStore(ctx).set_many(
        Actor.cli(), {"lockout.attempts": "1", "yubikey.server_url": closed_port_url(refused_port)}
    )
    for _ in range(3):
        outcome = MfaService(ctx).verify("bob", key.touch())
        assert (outcome.accepted, outcome.reason) == (False, "unavailable")
        assert "did not answer" in (outcome.detail or "")
    assert attempts(ctx) == 0
    SettingsStore(ctx).set_many(Actor.cli(), {"yubikey.server_url": standin.url})
    assert MfaService(ctx).verify("bob", key.touch()).accepted


def test_a_wrong_api_key_is_the_configurations_fault(ctx: Context, standin: YubicoStandin) -> None:
    key = standin.register(SimulatedYubikey())
    enroll_server(ctx, standin, key)
    # Signed with another key: the stand-in answers BAD_SIGNATURE, signed with the real key —
    # which then fails our check too; either way the sentence points at the API key.
    SettingsStore(ctx).set_many(Actor.cli(), {"yubikey.api_key": "c2VjcmV0"})
    outcome = MfaService(ctx).verify("bob", key.touch())
    assert outcome.reason == "unavailable" and "api_key" in (outcome.detail or "")
    SettingsStore(ctx).set_many(
        Actor.cli(), {"yubikey.api_key": standin.api_key_b64, "yubikey.client_id": "999"}
    )
    outcome = MfaService(ctx).verify("bob", key.touch())
    assert outcome.reason == "unavailable"
    assert "NO_SUCH_CLIENT" in (outcome.detail or "") and "client_id" in (outcome.detail or "")
    assert attempts(ctx) == 0


def test_switching_to_local_after_a_server_enrollment_says_what_to_do(
    ctx: Context, standin: YubicoStandin
) -> None:
    key = standin.register(SimulatedYubikey())
    enroll_server(ctx, standin, key)
    SettingsStore(ctx).set_many(Actor.cli(), {"yubikey.mode": "local"})
    outcome = MfaService(ctx).verify("bob", key.touch())
    assert outcome.reason == "unavailable" and "yubikey.mode" in (outcome.detail or "")


# Server Settings → Test ----------------------------------------------------------------------------


def settings_test(ctx: Context) -> str:
    """What Server Settings → Test says (it runs as the signed-in administrator)."""
    with ctx.db.read() as session:
        row = session.exec(select(User)).first()
    if row is None:
        UserService(ctx).create(Actor.cli(), "root")
        return settings_test(ctx)
    env = FactorEnv(ctx, SettingsStore(ctx).load(), ctx.clock.now())
    return factor_for("yubikey").test_settings(env, row)  # type: ignore[attr-defined]


def test_settings_test_in_each_mode(ctx: Context, standin: YubicoStandin) -> None:
    use_local(ctx)
    assert "Local validation needs no server" in settings_test(ctx)
    use_server(ctx, standin)
    said = settings_test(ctx)
    assert standin.url in said and "valid signature" in said and "refused a made-up" in said
    assert standin.requests[-1]["id"] == standin.client_id


def test_settings_test_names_the_problem(
    ctx: Context, standin: YubicoStandin, refused_port: int
) -> None:
    use_server(ctx, standin, url=closed_port_url(refused_port))
    with pytest.raises(ProviderUnavailable, match="did not answer"):
        settings_test(ctx)
    SettingsStore(ctx).set_many(Actor.cli(), {"yubikey.api_key": "%%%"})
    with pytest.raises(ProviderUnavailable, match="base64"):
        settings_test(ctx)


# Secrets at rest -----------------------------------------------------------------------------------


@pytest.fixture
def sqlite_ctx(tmp_path: Path, clock: FixedClock) -> Iterator[tuple[Context, Path]]:
    path = tmp_path / "file.db"
    context = open_context(
        Config(database_url=f"sqlite:///{path}", key_file=tmp_path / "key"), clock
    )
    yield context, path
    context.close()


def test_the_database_file_holds_no_aes_key_private_id_or_api_key(
    sqlite_ctx: tuple[Context, Path], standin: YubicoStandin
) -> None:
    ctx, path = sqlite_ctx
    use_server(ctx, standin)  # the API key saved in the settings
    use_local(ctx)
    key = SimulatedYubikey()
    enroll_local(ctx, key)
    assert MfaService(ctx).verify("bob", key.touch()).accepted

    needles = [
        key.aes_key,
        key.private_id,
        key.aes_key_hex.encode(),
        key.aes_key_hex.upper().encode(),
        key.private_id_hex.encode(),
        standin.api_key,
        standin.api_key_b64.encode(),
    ]
    with ctx.db.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    files = [path, Path(f"{path}-wal")]
    content = b"".join(file.read_bytes() for file in files if file.exists())
    assert key.public_id.encode() in content  # the file is readable here: the public id is stored
    assert [needle for needle in needles if needle in content] == []
