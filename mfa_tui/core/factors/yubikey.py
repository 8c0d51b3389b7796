"""Yubikey (Yubico OTP): one touch binds the key's public id; login then takes OTPs from that key only.

A Yubico OTP is the key's modhex public id (12 characters) followed by a 32-character modhex token:
the AES-128 encryption of the private id, the usage and session counters, a timestamp and a CRC.
Two ways to check it (setting ``yubikey.mode``):

- ``local``: the key's AES key and private id are typed at enrollment, next to the first touch, and
  stored encrypted; an OTP is decrypted here. Its counters (usage × 256 + session) only go up, so the
  service accepts each counter once with its conditional UPDATE: a replayed OTP is refused.
- ``server``: a validation server speaking the YubiCloud protocol 2.0 checks the OTP and refuses
  replays itself. Requests and answers are signed (HMAC-SHA1 with the base64 API key); an answer
  must carry a good signature and echo our OTP and nonce, or it counts as the server failing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping

import httpx
from yubiotp.modhex import is_modhex
from yubiotp.otp import decode_otp

from mfa_tui.core.errors import InputError
from mfa_tui.core.factors import (
    EnrollmentField,
    EnrollmentStart,
    FactorEnv,
    Proof,
    ProviderUnavailable,
    split_enrollment_code,
)
from mfa_tui.core.models import CredentialState, MfaCredential, User

TABLE = "mfa_credentials"
TOKEN_LENGTH = 32  # the encrypted part, after the public id
TIMEOUT_SECONDS = 5.0
AES_KEY_FIELD = "aes_key"
PRIVATE_ID_FIELD = "private_id"
LOCAL_FIELDS = (
    EnrollmentField(AES_KEY_FIELD, "AES key (32 hexadecimal characters)", secret=True),
    EnrollmentField(PRIVATE_ID_FIELD, "Private ID (12 hexadecimal characters)", secret=True),
)
# Answers that mean the OTP itself is wrong (the user's doing); any other status is the server's
# or the configuration's problem and must not count toward a lockout.
REFUSING_STATUSES = frozenset({"BAD_OTP", "REPLAYED_OTP"})


class YubikeyFactor:
    type = "yubikey"
    label = "Yubikey"
    code_prompt = "Put the cursor in the Code field and touch your Yubikey."

    def new_credential(
        self, env: FactorEnv, *, credential_id: str, user: User
    ) -> tuple[MfaCredential, EnrollmentStart]:
        # The key's public id and (in local mode) its secret arrive with the first touch.
        credential = MfaCredential(
            id=credential_id,
            user_id=user.id,  # type: ignore[arg-type]
            type=self.type,
            state=CredentialState.VERIFYING,
            created_at=env.now,
        )
        return credential, self._view(env, credential)

    def enrollment_view(
        self, env: FactorEnv, credential: MfaCredential, user: User
    ) -> EnrollmentStart:
        return self._view(env, credential)

    def challenge(self, env: FactorEnv, credential: MfaCredential, user: User) -> str | None:
        return None  # the key makes its own code

    def verify(
        self, env: FactorEnv, credential: MfaCredential, user: User, code: str
    ) -> Proof | None:
        text, fields = split_enrollment_code(code.strip())
        otp = _parse_otp(text)
        if otp is None:
            return None
        public_id = otp[:-TOKEN_LENGTH]
        bound = _bound_public_id(credential)
        if bound is not None and not hmac.compare_digest(bound, public_id):
            return None  # another key
        device_data = json.dumps({"public_id": public_id}) if bound is None else None
        if env.settings["yubikey.mode"] == "server":
            counter = _ValidationServer.from_settings(env).verify(otp)
            if counter is None:
                return None
            return Proof(counter=counter if counter >= 0 else None, device_data=device_data)
        return self._verify_locally(env, credential, otp, fields, device_data)

    def test_settings(self, env: FactorEnv, user: User) -> str:
        """Server Settings → Test: in server mode, ask the server about a made-up OTP."""
        if env.settings["yubikey.mode"] != "server":
            return (
                "Local validation needs no server: each Yubikey's AES key and private ID are "
                "entered when it is enrolled."
            )
        server = _ValidationServer.from_settings(env)
        # A well-formed OTP no key ever made: a working server refuses it, signed.
        probe = "cccccccccccc" + "".join(secrets.choice("cbdefghijklnrtuv") for _ in range(32))
        refused = server.verify(probe) is None
        return f"The validation server at {server.url} answered with a valid signature" + (
            " (it refused a made-up test OTP, as it should)." if refused else "."
        )

    # Local validation --------------------------------------------------------------------------

    def _verify_locally(
        self,
        env: FactorEnv,
        credential: MfaCredential,
        otp: str,
        fields: Mapping[str, str],
        device_data: str | None,
    ) -> Proof | None:
        sealed: bytes | None = None
        if credential.secret is not None:
            secret = env.ctx.box.decrypt(
                credential.secret, table=TABLE, row_id=credential.id, field="secret"
            )
        elif credential.state == CredentialState.VERIFYING:
            secret = _secret_from_fields(fields)
            sealed = env.ctx.box.encrypt(secret, table=TABLE, row_id=credential.id, field="secret")
        else:
            raise ProviderUnavailable(
                "This Yubikey was enrolled for a validation server, but yubikey.mode is local: "
                "set yubikey.mode to server, or enroll the key again."
            )
        aes_key, private_id = secret[:16], secret[16:]
        try:
            _, token = decode_otp(otp.encode("ascii"), aes_key)
        except ValueError:  # not decodable, or the CRC does not match: another key's OTP
            return None
        if not hmac.compare_digest(token.uid, private_id):
            return None
        # yubiotp's names: ``session`` is the usage counter kept across power-ups, ``counter``
        # the session counter (0-255) within one.
        return Proof(
            counter=token.session * 256 + token.counter,
            device_data=device_data,
            sealed_secret=sealed,
        )

    def _view(self, env: FactorEnv, credential: MfaCredential) -> EnrollmentStart:
        if env.settings["yubikey.mode"] == "server":
            return EnrollmentStart(
                credential_id=credential.id,
                instructions=(
                    "Insert the Yubikey, put the cursor in the code field and touch the key: "
                    "it types its one-time password."
                ),
            )
        return EnrollmentStart(
            credential_id=credential.id,
            instructions=(
                "Enter the Yubikey's AES key and private ID (as set when the key was programmed), "
                "then put the cursor in the code field and touch the key."
            ),
            fields=LOCAL_FIELDS,
        )


def _parse_otp(text: str) -> str | None:
    """A Yubico OTP in lower case: a public id of 2 to 32 modhex characters, then the token."""
    otp = text.strip().lower()
    if not TOKEN_LENGTH + 2 <= len(otp) <= TOKEN_LENGTH * 2 or not is_modhex(
        otp.encode("ascii", "replace")
    ):
        return None
    return otp


def _bound_public_id(credential: MfaCredential) -> str | None:
    if not credential.device_data:
        return None
    public_id = json.loads(credential.device_data).get("public_id")
    return public_id if isinstance(public_id, str) else None


def _hex_field(fields: Mapping[str, str], name: str, length: int, what: str) -> bytes:
    text = "".join(fields.get(name, "").split())
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != length:
        raise InputError(
            f"The {what} is {length * 2} hexadecimal characters; check what was typed."
        )
    return value


def _secret_from_fields(fields: Mapping[str, str]) -> bytes:
    """The AES key and private id typed with the first touch, as the 22 bytes stored encrypted."""
    aes_key = _hex_field(fields, AES_KEY_FIELD, 16, "Yubikey AES key")
    private_id = _hex_field(fields, PRIVATE_ID_FIELD, 6, "Yubikey private ID")
    return aes_key + private_id


# Server validation (YubiCloud protocol 2.0) ---------------------------------------------------------


def signature(params: Mapping[str, str], key: bytes) -> str:
    """The protocol's ``h``: HMAC-SHA1 over ``k=v`` pairs sorted by key and joined by ``&``, base64."""
    message = "&".join(f"{name}={params[name]}" for name in sorted(params))
    return base64.b64encode(hmac.new(key, message.encode("utf-8"), hashlib.sha1).digest()).decode()


def parse_response(body: str) -> dict[str, str]:
    """The ``key=value`` lines of an answer (a value may itself contain ``=``, as base64 does)."""
    pairs = (line.strip().split("=", 1) for line in body.splitlines() if "=" in line)
    return {name: value for name, value in pairs}


class _ValidationServer:
    def __init__(self, url: str, client_id: str, key: bytes) -> None:
        self.url = url
        self.client_id = client_id
        self.key = key

    @classmethod
    def from_settings(cls, env: FactorEnv) -> _ValidationServer:
        settings = env.settings
        url, client_id, api_key = (
            settings["yubikey.server_url"],
            settings["yubikey.client_id"],
            settings["yubikey.api_key"],
        )
        if not url or not client_id or not api_key:
            raise ProviderUnavailable(
                "Yubikey server validation is not set up: set yubikey.server_url, "
                "yubikey.client_id and yubikey.api_key."
            )
        try:
            key = base64.b64decode(api_key, validate=True)
        except (binascii.Error, ValueError):
            raise ProviderUnavailable(
                "yubikey.api_key is not the base64 API key the validation server issued."
            ) from None
        return cls(url, client_id, key)

    def verify(self, otp: str) -> int | None:
        """The key's counter (usage × 256 + session, -1 when the server does not tell) for an OTP
        the server accepts; None for one it refuses; ProviderUnavailable when it fails."""
        nonce = secrets.token_hex(16)
        params = {"id": self.client_id, "otp": otp, "nonce": nonce, "timestamp": "1"}
        params["h"] = signature(params, self.key)
        try:
            response = httpx.get(self.url, params=params, timeout=TIMEOUT_SECONDS)
        except httpx.HTTPError as error:
            raise ProviderUnavailable(
                f"The Yubikey validation server did not answer ({type(error).__name__}); "
                "try again later or check yubikey.server_url."
            ) from None
        if response.status_code != 200:
            raise ProviderUnavailable(
                f"The Yubikey validation server answered HTTP {response.status_code}; "
                "check yubikey.server_url."
            )
        answer = parse_response(response.text)
        unsigned = {name: value for name, value in answer.items() if name != "h"}
        if not hmac.compare_digest(answer.get("h", ""), signature(unsigned, self.key)):
            raise ProviderUnavailable(
                "The Yubikey validation server's answer is not signed with yubikey.api_key; "
                "check the API key (or something between us and the server altered the answer)."
            )
        status = answer.get("status", "")
        if status == "REPLAYED_REQUEST" or (
            status != "BAD_SIGNATURE" and (answer.get("otp") != otp or answer.get("nonce") != nonce)
        ):
            raise ProviderUnavailable(
                "The Yubikey validation server answered about another request; try again."
            )
        if status in REFUSING_STATUSES:
            return None
        if status != "OK":
            raise ProviderUnavailable(
                f"The Yubikey validation server answered {status or 'nothing'}: "
                + _STATUS_HINTS.get(status, "check the yubikey settings, or try again later.")
            )
        try:
            return int(answer["sessioncounter"]) * 256 + int(answer["sessionuse"])
        except (KeyError, ValueError):
            return -1


_STATUS_HINTS = {
    "BAD_SIGNATURE": "check yubikey.api_key.",
    "NO_SUCH_CLIENT": "check yubikey.client_id.",
    "MISSING_PARAMETER": "check yubikey.server_url.",
    "OPERATION_NOT_ALLOWED": "this client id may not validate OTPs.",
    "BACKEND_ERROR": "the server has a problem; try again later.",
    "NOT_ENOUGH_ANSWERS": "the server could not reach its peers; try again later.",
}
