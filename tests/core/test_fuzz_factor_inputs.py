"""Hostile input to the RADIUS and Duo factors, the Yubikey enrollment fields, every server setting
and the otpauth URI (hypothesis, fixed seed), on SQLite and PostgreSQL where a database is used.

- RADIUS, against a private FreeRADIUS started once for the module, and Duo, against the local
  Auth API stand-in: whatever string arrives as a code (with or without an Access-Challenge State,
  forged or real), ``MfaService.verify`` answers with a ``VerifyOutcome``, never raises and never
  accepts; afterwards the real passcode, the challenge's second answer and a Duo push still work.
- Yubikey enrollment in local mode: the line ``users set-mfa NAME --type yubikey`` reads (and the
  console sends) is a JSON object with the OTP, the AES key and the private ID; hostile lines and
  fields make ``confirm_code`` return False or raise ``InputError`` with one sentence, nothing
  else, and the key with its right fields still enrolls.
- Every server setting (``settings set``, the Server Settings screen): the text becomes a valid
  value or ``InputError`` with one sentence; a text value keeps no control character. The RADIUS
  settings are saved whole or not at all, and a saved NAS-Identifier still makes a request that
  FreeRADIUS answers.
- The otpauth URI: for every issuer and username the rules accept, it is ASCII, reads back through
  pyotp to the same issuer, account and secret, and fits in a QR code.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from mfa_tui.core import validation
from mfa_tui.core.access import Actor
from mfa_tui.core.context import Context
from mfa_tui.core.errors import InputError
from mfa_tui.core.factors import enrollment_code
from mfa_tui.core.models import ServerSetting
from mfa_tui.core.otp import TotpParameters, base32_secret, new_secret, otpauth_uri
from mfa_tui.core.qr import qr_lines
from mfa_tui.core.services.mfa import MfaService, VerifyOutcome
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import UserService
from mfa_tui.core.settings import SETTING_SPECS, SettingSpec, spec_for
from mfa_tui.core.text import has_control_characters, printable
from tests.core.test_factor_duo import IPHONE, use_duo
from tests.core.test_factor_radius import enroll as enroll_radius
from tests.core.test_factor_radius import use as use_radius
from tests.core.test_factor_yubikey import begin, use_local
from tests.core.test_fuzz_text import odd_text
from tests.core.test_fuzz_verify import hostile_codes
from tests.helpers import freeradius
from tests.helpers.duo_standin import DuoStandIn, DuoUser, phone, running_duo
from tests.helpers.freeradius import RadiusServer
from tests.helpers.fuzz import fuzz
from tests.helpers.yubico_standin import SimulatedYubikey

# duo_client builds its TLS context with ssl.PROTOCOL_TLS (still verifying): not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:ssl.PROTOCOL_TLS is deprecated:DeprecationWarning")
CLI = Actor.cli()
CODES = 100
DUO_PASSCODES = {"314159", "2718281"}
DEEP_JSON = '{"code": "x", "fields": ' + "[" * 100_000
# What a code field, a CLI line or a PAM authtok may carry beyond the shapes in test_fuzz_verify.
HOSTILE_EXTRAS = st.sampled_from(
    [
        "push 2",
        " PUSH  3 ",
        "push 99",
        "push 0",
        "push 1٣",
        "pushpush",
        "a" * 129,  # RADIUS passwords are 128 bytes at most
        "é" * 65,  # 130 bytes in UTF-8
        "\ud800",
        "alice-pass\ud800",
        "alice-pass\x00x",
        "carol-pass\n424242",
        "４２４２４２",
        "١٢٣٤٥٦",
        DEEP_JSON,
        "[" * 100_000,
        '{"code": "424242", "fields": {"aes_key": 7}}',
    ]
)


def factor_codes() -> st.SearchStrategy[str]:
    return st.one_of(
        hostile_codes("cccccccccccc"), st.text(min_size=100, max_size=400), HOSTILE_EXTRAS
    )


def one_sentence(error: Exception) -> None:
    """A message for people: a sentence (it ends with a full stop), shown on one line."""
    message = printable(str(error)).strip()
    assert message.endswith(".") and "Traceback" not in message, message


# RADIUS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def radius() -> Iterator[RadiusServer]:
    yield from freeradius.start_freeradius()


@pytest.fixture
def radius_ctx(ctx: Context, radius: RadiusServer) -> Context:
    """alice (plain passcode) and carol (Access-Challenge) enrolled against FreeRADIUS."""
    use_radius(ctx, radius)
    SettingsStore(ctx).set_many(CLI, {"lockout.attempts": "100"})
    for name in ("alice", "carol"):
        UserService(ctx).create(CLI, name)
    enroll_radius(ctx, "alice", "alice-pass")
    freeradius.enroll_challenge_user(ctx, "carol")
    return ctx


@pytest.mark.parametrize("target", ["alice", "carol"])
def test_hostile_radius_codes_are_refused_and_the_real_ones_still_work(
    radius_ctx: Context, radius: RadiusServer, target: str
) -> None:
    service = MfaService(radius_ctx)
    real_state = service.verify("carol", "carol-pass").state
    assert real_state
    reasons: dict[str, int] = {}

    @fuzz(CODES)
    @given(
        code=factor_codes(),
        state=st.one_of(
            st.none(), st.just(real_state), st.text(max_size=80), st.binary().map(bytes.hex)
        ),
    )
    def check(code: str, state: str | None) -> None:
        outcome = service.verify(target, code, state=state)
        assert isinstance(outcome, VerifyOutcome)
        assert not outcome.accepted, (target, code, state)
        assert outcome.reason in ("wrong_code", "locked"), outcome
        reasons[outcome.reason] = reasons.get(outcome.reason, 0) + 1
        if outcome.reason == "locked":
            service.unlock(CLI, target)

    check()
    service.unlock(CLI, target)
    if target == "alice":
        assert service.verify("alice", "alice-pass").accepted
    else:
        challenge = service.verify("carol", "carol-pass")
        assert challenge.reason == "challenge"
        assert service.verify("carol", freeradius.CHALLENGE_CODE, state=challenge.state).accepted
    print(f"\nRADIUS code fuzz ({target}): {sum(reasons.values())} codes, {reasons}, 0 accepted")


# Duo ---------------------------------------------------------------------------------------------


@pytest.fixture
def duo(tmp_path: Path) -> Iterator[DuoStandIn]:
    with running_duo(tmp_path) as server:
        server.users["alice"] = DuoUser(
            devices=[phone(IPHONE, "iOS (XXX-XXX-1111)")], passcodes=set(DUO_PASSCODES)
        )
        yield server


def test_hostile_duo_codes_are_refused_and_push_and_passcode_still_work(
    ctx: Context, duo: DuoStandIn
) -> None:
    use_duo(ctx, duo, **{"lockout.attempts": "100"})
    UserService(ctx).create(CLI, "alice")
    service = MfaService(ctx)
    start = service.begin_enrollment(CLI, "alice", "duo")
    assert service.confirm_code(CLI, start.credential_id, "push")
    service.activate(CLI, "alice", start.credential_id)
    duo.users["alice"].push_answer = "deny"  # so that a hostile "push" is a refusal, not a login
    reasons: dict[str, int] = {}
    asked_before = len(duo.calls("/auth/v2/auth"))

    @fuzz(CODES)
    @given(code=factor_codes().filter(lambda code: code.strip() not in DUO_PASSCODES))
    def check(code: str) -> None:
        outcome = service.verify("alice", code)
        assert isinstance(outcome, VerifyOutcome)
        assert not outcome.accepted, code
        # "unavailable": e.g. push 99, a device that does not exist (said, not counted).
        assert outcome.reason in ("wrong_code", "locked", "unavailable"), outcome
        if outcome.reason == "unavailable":
            one_sentence(Exception(outcome.message))
        reasons[outcome.reason] = reasons.get(outcome.reason, 0) + 1
        if outcome.reason == "locked":
            service.unlock(CLI, "alice")

    check()
    asked = duo.calls("/auth/v2/auth")[asked_before:]
    service.unlock(CLI, "alice")
    duo.users["alice"].push_answer = "allow"
    assert service.verify("alice", "push").accepted
    assert service.verify("alice", "314159").accepted
    pushes = sum(request.params.get("factor") == "push" for request in asked)
    print(
        f"\nDuo code fuzz: {sum(reasons.values())} codes, {reasons}, 0 accepted; "
        f"{len(asked)} reached Duo ({pushes} pushes denied, {len(asked) - pushes} passcodes "
        "refused), the rest never left this computer"
    )


# Yubikey enrollment fields -------------------------------------------------------------------------


def _means(value: str, right: bytes) -> bool:
    try:
        return bytes.fromhex("".join(value.split())) == right
    except ValueError:
        return False


def _hex_ish(right: bytes) -> st.SearchStrategy[str]:
    """Hostile text for a hexadecimal field, never one that means the right value."""
    return st.one_of(
        st.text(alphabet="0123456789abcdefABCDEF \t", max_size=40),
        st.text(max_size=40),
        st.binary(min_size=len(right), max_size=len(right)).map(bytes.hex),
        st.sampled_from(
            ["", " ", "0x" + right.hex(), right.hex()[:-1], right.hex() + "0", "é" * 32]
        ),
    ).filter(lambda value: not _means(value, right))


def test_hostile_yubikey_enrollment_lines_give_false_or_one_sentence(ctx: Context) -> None:
    use_local(ctx)
    SettingsStore(ctx).set_many(CLI, {"lockout.attempts": "100"})
    start = begin(ctx, "bob")
    key = SimulatedYubikey()
    otp = key.touch()
    service = MfaService(ctx)
    hostile_otps = hostile_codes(key.public_id)
    right_or_not_aes = st.one_of(st.just(key.aes_key_hex), _hex_ish(key.aes_key))
    right_or_not_id = st.one_of(st.just(key.private_id_hex), _hex_ish(key.private_id))
    lines = st.one_of(
        # The key's real OTP, with at least one wrong field.
        st.builds(
            lambda aes, pid: enrollment_code(otp, {"aes_key": aes, "private_id": pid}),
            _hex_ish(key.aes_key),
            right_or_not_id,
        ),
        st.builds(
            lambda aes, pid: enrollment_code(otp, {"aes_key": aes, "private_id": pid}),
            right_or_not_aes,
            _hex_ish(key.private_id),
        ),
        # A hostile OTP with the right fields, or with hostile ones.
        st.builds(
            lambda code, aes, pid: enrollment_code(code, {"aes_key": aes, "private_id": pid}),
            hostile_otps,
            right_or_not_aes,
            right_or_not_id,
        ),
        # Any JSON object, any text, a plain code without fields.
        st.dictionaries(st.text(max_size=10), st.text(max_size=20)).map(json.dumps),
        st.recursive(
            st.none() | st.booleans() | st.text(max_size=8),
            lambda inner: st.lists(inner) | st.dictionaries(st.text(max_size=5), inner),
            max_leaves=20,
        ).map(json.dumps),
        odd_text,
        st.just(otp),
        HOSTILE_EXTRAS,
    )
    counts = {"false": 0, "refused": 0}

    @fuzz(150)
    @given(line=lines)
    def check(line: str) -> None:
        try:
            accepted = service.confirm_code(CLI, start.credential_id, line.strip())
        except InputError as refusal:
            one_sentence(refusal)
            counts["refused"] += 1
            return
        assert accepted is False, line
        counts["false"] += 1

    check()
    fields = key.enrollment_fields()
    assert service.confirm_code(CLI, start.credential_id, enrollment_code(key.touch(), fields))
    service.activate(CLI, "bob", start.credential_id)
    # The same hostile lines at login: refusals, never an exception.
    for line in (DEEP_JSON, "[" * 100_000, enrollment_code(otp, fields), json.dumps({"code": 1})):
        assert service.verify("bob", line).reason == "wrong_code"
    assert service.verify("bob", key.touch()).accepted
    print(
        f"\nYubikey enrollment fuzz: {sum(counts.values())} lines, {counts['false']} not accepted, "
        f"{counts['refused']} refused with one sentence, 0 accepted"
    )


# Server settings ---------------------------------------------------------------------------------

setting_text = st.one_of(
    odd_text,
    st.integers().map(str),
    st.sampled_from(
        [
            " 42 ",
            "1e3",
            "0x10",
            "1_000",
            "٣",
            "+5",
            "-0",
            "9" * 5000,
            "TRUE",
            " yes ",
            "totp,,TOTP , sms",
            "totp,x",
            "[::1]:1812",
            "127.0.0.1\x00",
            "a" * 600,
            "é" * 200,
            "https://exa mple.com",
            "https://example.com\x1b[2J",
            "radius\u202e",
        ]
    ),
)


# Text without control characters, up to past the 253 bytes of a RADIUS attribute.
plain_text = st.text(st.characters(categories=["L", "N", "P", "S", "Zs"]), max_size=300)


def _check_value(spec: SettingSpec, value: object) -> None:
    if spec.kind == "str":
        assert isinstance(value, str) and len(value) <= 512
        assert not has_control_characters(value), (spec.key, value)
        value.encode("utf-8")  # a value goes to servers and files: always encodable
    if spec.kind == "int":
        assert isinstance(value, int)
        assert spec.minimum is None or value >= spec.minimum
        assert spec.maximum is None or value <= spec.maximum


def test_every_setting_gives_a_value_or_one_sentence() -> None:
    figures: dict[str, int] = {"tried": 0, "accepted": 0, "refused": 0}

    def fuzz_one(spec: SettingSpec) -> None:
        @fuzz(40)
        @given(raw=setting_text)
        def check(raw: str) -> None:
            figures["tried"] += 1
            try:
                value = spec.parse(raw)
            except InputError as refusal:
                one_sentence(refusal)
                figures["refused"] += 1
                return
            _check_value(spec, value)
            figures["accepted"] += 1

        check()

    for spec in SETTING_SPECS:
        fuzz_one(spec)
    print(
        f"\nsettings fuzz: {len(SETTING_SPECS)} keys, {figures['tried']} values, "
        f"{figures['accepted']} accepted, {figures['refused']} refused with one sentence"
    )


def _rows(ctx: Context) -> dict[str, str]:
    with ctx.db.read() as session:
        return {row.key: row.value for row in session.exec(select(ServerSetting)).all()}


RADIUS_KEYS = [spec.key for spec in SETTING_SPECS if spec.key.startswith("radius.")]


def test_radius_settings_are_saved_whole_or_not_at_all_and_still_reach_the_server(
    ctx: Context, radius: RadiusServer
) -> None:
    use_radius(ctx, radius)
    UserService(ctx).create(CLI, "alice")
    enroll_radius(ctx, "alice", "alice-pass")
    store = SettingsStore(ctx)
    figures = {"saved": 0, "refused": 0, "nas_checked": 0}

    some_keys = st.dictionaries(
        st.sampled_from(RADIUS_KEYS), setting_text | plain_text, min_size=1, max_size=3
    )
    with_nas = st.builds(
        lambda nas, others: {**others, "radius.nas_identifier": nas},
        setting_text | plain_text,
        some_keys,
    )

    @fuzz(120)
    @given(values=some_keys | with_nas)
    def check(values: dict[str, str]) -> None:
        before = _rows(ctx)
        try:
            store.set_many(CLI, values)
        except InputError as refusal:
            one_sentence(refusal)
            assert _rows(ctx) == before, values  # nothing half-saved
            figures["refused"] += 1
            return
        saved = store.load()
        for key, raw in values.items():
            assert saved[key] == spec_for(key).parse(raw)
        figures["saved"] += 1
        use_radius(ctx, radius)  # the server, port and secret back; the rest stays as saved
        if "radius.nas_identifier" in values:
            # The NAS-Identifier travels in every request: whatever was saved, FreeRADIUS answers.
            assert MfaService(ctx).verify("alice", "alice-pass").accepted
            figures["nas_checked"] += 1

    check()
    assert MfaService(ctx).verify("alice", "alice-pass").accepted
    print(
        f"\nRADIUS settings fuzz: {sum(figures[k] for k in ('saved', 'refused'))} changes, "
        f"{figures['saved']} saved, {figures['refused']} refused with nothing saved, "
        f"{figures['nas_checked']} saved NAS-Identifiers answered by FreeRADIUS"
    )


# The otpauth URI ---------------------------------------------------------------------------------

issuers = st.one_of(
    odd_text,
    st.text(st.characters(categories=["L", "N", "P", "S", "Zs"]), min_size=1, max_size=80),
    st.sampled_from(
        ["mfa-tui", "Acme & Co #1", "50% off?", "a/b\\c", "🙂" * 64, "🙂" * 512, "İ" * 64]
    ),
)
accounts = st.one_of(
    odd_text, st.from_regex(r"[\w][\w.@+-]{0,63}", fullmatch=True), st.just("𠀀" * 64)
)


def test_every_accepted_issuer_and_username_make_a_readable_otpauth_uri() -> None:
    issuer_spec = spec_for("totp.issuer")
    figures = {"pairs": 0, "uris": 0}

    @fuzz(300)
    @given(
        issuer=issuers,
        account=accounts,
        params=st.sampled_from([TotpParameters(), TotpParameters(8, 60, "SHA512")]),
    )
    def check(issuer: str, account: str, params: TotpParameters) -> None:
        figures["pairs"] += 1
        try:
            issuer = issuer_spec.parse(issuer)
            account = validation.username(account)
        except InputError as refusal:
            one_sentence(refusal)
            return
        secret = new_secret()
        uri = otpauth_uri(secret, issuer=issuer, account=account, params=params)
        assert uri.isascii(), uri
        parsed = pyotp.parse_uri(uri)
        assert (parsed.issuer, parsed.name, parsed.secret) == (
            issuer,
            account,
            base32_secret(secret),
        )
        assert parsed.digits == params.digits
        assert qr_lines(uri), uri  # fits in a QR code (the console draws it)
        figures["uris"] += 1

    check()
    print(
        f"\notpauth fuzz: {figures['pairs']} issuer/username pairs, {figures['uris']} accepted "
        "and read back through pyotp and a QR code, the rest refused with one sentence"
    )
