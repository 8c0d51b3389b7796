"""Server settings: the SPEC §5 keys, parsing, the rules between keys, storage, masking, audit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from mfa_tui.core.access import Actor
from mfa_tui.core.audit import list_events
from mfa_tui.core.context import Context
from mfa_tui.core.errors import InputError, PermissionDenied
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import UserService
from mfa_tui.core.settings import (
    SETTING_SPECS,
    SPECS_BY_KEY,
    Settings,
    SettingSpec,
    spec_for,
    validate_combination,
)

# SPEC.md §5 "Settings keys", written out literally: these names are a contract.
SPEC_KEYS = [
    "mfa.usage",
    "mfa.supported",
    "mfa.default_type",
    "mfa.pending_expiry_days",
    "alternate.email",
    "alternate.backup_codes",
    "backup_codes.count",
    "lockout.attempts",
    "lockout.minutes",
    "totp.issuer",
    "totp.digits",
    "totp.period",
    "totp.algorithm",
    "totp.drift",
    "smtp.host",
    "smtp.port",
    "smtp.security",
    "smtp.username",
    "smtp.password",
    "smtp.from",
    "sms.mode",
    "sms.base_url",
    "sms.account_sid",
    "sms.auth_token",
    "sms.from",
    "radius.server",
    "radius.port",
    "radius.secret",
    "radius.timeout",
    "radius.nas_identifier",
    "radius.strip_domain",
    "radius.failover_server",
    "radius.failover_port",
    "radius.failover_secret",
    "duo.api_host",
    "duo.integration_key",
    "duo.secret_key",
    "yubikey.mode",
    "yubikey.server_url",
    "yubikey.client_id",
    "yubikey.api_key",
    "tap.lifetime_minutes",
    "tap.single_use",
]
SECRET_KEYS = {
    "smtp.password",
    "sms.auth_token",
    "radius.secret",
    "radius.failover_secret",
    "duo.secret_key",
    "yubikey.api_key",
}
SECRET_VALUE = "hunter2-secret-value"


@pytest.mark.parametrize("key", SPEC_KEYS)
def test_every_spec_key_exists(key: str) -> None:
    assert key in SPECS_BY_KEY
    assert spec_for(key).key == key


def test_keys_are_unique_and_credentials_are_secret() -> None:
    keys = [spec.key for spec in SETTING_SPECS]
    assert len(keys) == len(set(keys))
    secret_keys = {spec.key for spec in SETTING_SPECS if spec.secret}
    assert SECRET_KEYS.issubset(secret_keys)


def test_spec_defaults() -> None:
    defaults = Settings()
    assert defaults["backup_codes.count"] == 10
    assert defaults["lockout.attempts"] == 5
    assert defaults["lockout.minutes"] == 15
    assert defaults["mfa.pending_expiry_days"] == 7
    assert (defaults["totp.digits"], defaults["totp.period"], defaults["totp.algorithm"]) == (
        6,
        30,
        "SHA1",
    )
    assert defaults["totp.drift"] == 1


def _bad_value(spec: SettingSpec) -> str:
    """A value this key must refuse."""
    if spec.kind == "int":
        return "many"
    if spec.kind == "bool":
        return "maybe"
    if spec.kind in ("choice", "types"):
        return "carrier-pigeon"
    if spec.check is not None:
        for candidate in ("bad:value with spaces!", "ftp://nowhere", ""):
            if spec.check(candidate):
                return candidate
    return "x" * 513


@pytest.mark.parametrize("spec", SETTING_SPECS, ids=lambda spec: spec.key)
def test_parse_errors_name_the_key(spec: SettingSpec) -> None:
    with pytest.raises(InputError) as raised:
        spec.parse(_bad_value(spec))
    assert spec.key in str(raised.value)


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        ("lockout.attempts", "0"),
        ("lockout.attempts", "101"),
        ("totp.digits", "7"),
        ("smtp.port", "70000"),
        ("backup_codes.count", "1.5"),
    ],
)
def test_out_of_range_numbers_are_refused_with_the_key(key: str, raw: str) -> None:
    with pytest.raises(InputError, match=key.replace(".", r"\.")):
        spec_for(key).parse(raw)


@pytest.mark.parametrize("key", ["lockout.attempts", "smtp.verify_tls", "mfa.usage"])
def test_a_huge_bad_value_is_repeated_only_in_part(key: str) -> None:
    """A number, a true/false and a choice: the message stays one short line."""
    with pytest.raises(InputError) as raised:
        spec_for(key).parse("9x" * 2500)
    message = str(raised.value)
    assert key in message and "9x9x9x" in message and "…" in message and len(message) < 200


def test_an_unknown_key_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"mfa\.nonsense"):
        spec_for("mfa.nonsense")


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("true", True),
        ("false", False),
        ("yes", True),
        ("no", False),
        (" YES ", True),
        ("No", False),
    ],
)
def test_bools_accept_true_false_yes_no(raw: str, value: bool) -> None:
    assert spec_for("alternate.email").parse(raw) is value


def test_numbers_and_choices_parse() -> None:
    assert spec_for("lockout.attempts").parse(" 7 ") == 7
    assert spec_for("mfa.usage").parse("Required") == "required"
    assert spec_for("totp.algorithm").parse("sha256") == "SHA256"


def test_supported_types_parse_as_a_list_and_refuse_unknown_types() -> None:
    supported = spec_for("mfa.supported")
    assert supported.parse("totp, EMAIL,totp") == ("totp", "email")
    assert supported.parse("") == ()
    with pytest.raises(InputError, match="carrier-pigeon"):
        supported.parse("totp,carrier-pigeon")
    with pytest.raises(InputError):
        supported.parse("none")


def test_validate_combination_refuses_a_default_outside_the_supported_types() -> None:
    settings = Settings().with_value("mfa.supported", ("totp",))
    validate_combination(settings)
    with pytest.raises(InputError, match="default type"):
        validate_combination(settings.with_value("mfa.default_type", "email"))


def test_validate_combination_refuses_types_this_version_cannot_enroll(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every type is available now: pretend this version has only the authenticator.
    monkeypatch.setattr("mfa_tui.core.factors.available_types", lambda: ("totp",))
    settings = Settings().with_value("mfa.supported", ("totp", "duo"))
    with pytest.raises(InputError, match="not available"):
        validate_combination(settings)


def test_validate_combination_refuses_required_without_types() -> None:
    settings = Settings().with_value("mfa.supported", ()).with_value("mfa.usage", "required")
    with pytest.raises(InputError, match="Required"):
        validate_combination(settings)


def test_set_many_persists_and_audits_before_and_after(ctx: Context, cli_actor: Actor) -> None:
    SettingsStore(ctx).set_many(
        cli_actor,
        {"lockout.attempts": "7", "totp.issuer": "Acme", "alternate.email": "yes"},
    )
    loaded = SettingsStore(ctx).load()
    assert loaded["lockout.attempts"] == 7
    assert loaded["totp.issuer"] == "Acme"
    assert loaded["alternate.email"] is True
    with ctx.db.read() as session:
        events = list_events(session)
    assert [event.action for event in events] == ["settings.change"]
    assert events[0].actor == cli_actor.name
    assert events[0].details == {
        "lockout.attempts": {"before": "5", "after": "7"},
        "totp.issuer": {"before": "mfa-tui", "after": "Acme"},
        "alternate.email": {"before": "false", "after": "true"},
    }


def test_set_many_is_all_or_nothing(ctx: Context, cli_actor: Actor) -> None:
    with pytest.raises(InputError):
        SettingsStore(ctx).set_many(
            cli_actor, {"lockout.attempts": "7", "mfa.default_type": "email"}
        )
    assert SettingsStore(ctx).load()["lockout.attempts"] == 5
    with ctx.db.read() as session:
        assert list_events(session) == []


def test_setting_an_unchanged_value_is_not_audited(ctx: Context, cli_actor: Actor) -> None:
    SettingsStore(ctx).set_many(cli_actor, {"lockout.attempts": "5"})
    with ctx.db.read() as session:
        assert list_events(session) == []


def test_secrets_are_masked_in_show_and_in_the_audit(ctx: Context, cli_actor: Actor) -> None:
    store = SettingsStore(ctx)
    assert dict((spec.key, shown) for spec, shown in store.show())["smtp.password"] == ""
    store.set_many(cli_actor, {"smtp.password": SECRET_VALUE, "sms.auth_token": SECRET_VALUE})
    assert store.load()["smtp.password"] == SECRET_VALUE
    shown = {spec.key: value for spec, value in store.show()}
    assert shown["smtp.password"] == "********"
    assert shown["sms.auth_token"] == "********"
    assert SECRET_VALUE not in json.dumps(shown)
    with ctx.db.read() as session:
        (event,) = list_events(session)
    assert event.details["smtp.password"] == {"before": "", "after": "********"}
    assert SECRET_VALUE not in json.dumps(event.details)


def test_a_secret_is_not_stored_in_plain_text(ctx: Context, cli_actor: Actor) -> None:
    SettingsStore(ctx).set_many(
        cli_actor, {"smtp.password": SECRET_VALUE, "smtp.host": "mail.example.com"}
    )
    with ctx.db.read() as session:
        rows = dict(session.execute(text("SELECT key, value FROM server_settings")).all())
    assert rows["smtp.password"].startswith("enc:")
    assert SECRET_VALUE not in rows["smtp.password"]
    assert "mail.example.com" in rows["smtp.host"]  # non-secrets stay readable
    if ctx.db.engine.dialect.name != "sqlite":
        return
    database = Path(ctx.db.engine.url.database or "")
    ctx.close()
    files = sorted(database.parent.glob(database.name + "*"))
    assert database in files
    stored = b"".join(path.read_bytes() for path in files)
    assert b"mail.example.com" in stored  # the check would see a plain-text value
    assert SECRET_VALUE.encode() not in stored


def test_a_copied_secret_value_does_not_decrypt_under_another_key(
    ctx: Context, cli_actor: Actor
) -> None:
    """The row key is the associated data: a secret moved to another setting is refused."""
    SettingsStore(ctx).set_many(cli_actor, {"smtp.password": SECRET_VALUE})
    with ctx.db.write() as session:
        stored = session.execute(
            text("SELECT value FROM server_settings WHERE key = 'smtp.password'")
        ).scalar_one()
        session.execute(
            text("INSERT INTO server_settings (key, value, updated_at) VALUES (:k, :v, :t)"),
            {"k": "radius.secret", "v": stored, "t": ctx.clock.now()},
        )
    with pytest.raises(Exception, match="integrity check"):
        SettingsStore(ctx).load()


def test_helpdesk_is_refused_and_the_refusal_is_audited(ctx: Context, cli_actor: Actor) -> None:
    agent = UserService(ctx).create(cli_actor, "hd", role="helpdesk")
    helpdesk = Actor(name="hd", role="helpdesk", user_id=agent.id)
    with pytest.raises(PermissionDenied):
        SettingsStore(ctx).set_many(helpdesk, {"lockout.attempts": "99"})
    assert SettingsStore(ctx).load()["lockout.attempts"] == 5
    with ctx.db.read() as session:
        events = list_events(session)
        assert ctx.audit.verify(session).ok
    denied = [event for event in events if event.action == "denied"]
    assert len(denied) == 1
    assert denied[0].actor == "hd"
    assert "settings" in denied[0].details["action"]
    assert not any(event.action == "settings.change" for event in events)
