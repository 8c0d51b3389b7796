"""RADIUS (RFC 2865): the organisation's RADIUS server checks the passcode (a hardware token, an
OTP server behind RADIUS), with an optional second prompt (Access-Challenge).

Blast-RADIUS (CVE-2024-3596): every request carries a Message-Authenticator, and a reply is
believed only with a valid Response Authenticator AND a valid Message-Authenticator, both checked
here over the bytes received (RFC 2865 section 3, RFC 3579 section 3.2); a reply without one is
refused. pyrad encodes and decodes the packets; the exchange and the checks are ours, so a
forged or unsigned reply can never reach a decision.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets
import socket
import struct
import time
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from sqlalchemy import update
from sqlmodel import col

from mfa_tui.core.factors import (
    ChallengeRequired,
    EnrollmentStart,
    FactorEnv,
    Proof,
    ProviderUnavailable,
    verifying_credential,
)
from mfa_tui.core.models import CredentialState, MfaCredential, User
from mfa_tui.core.text import printable

if TYPE_CHECKING:  # pyrad loads when a request is made, not when the factor list is read
    from pyrad.dictionary import Dictionary
    from pyrad.packet import AuthPacket

# RFC 2865 packet codes.
ACCESS_ACCEPT = 2
ACCESS_REJECT = 3
ACCESS_CHALLENGE = 11

MESSAGE_AUTHENTICATOR = 80
MAX_PASSWORD_BYTES = 128  # RFC 2865 section 5.2
STATE_TABLE = "radius_challenge"
TEST_USERNAME = "mfa-tui-settings-test"
_DICTIONARY = """\
ATTRIBUTE User-Name 1 string
ATTRIBUTE User-Password 2 string encrypt=1
ATTRIBUTE Reply-Message 18 string
ATTRIBUTE State 24 octets
ATTRIBUTE NAS-Identifier 32 string
ATTRIBUTE Message-Authenticator 80 octets
"""


@cache
def _dictionary() -> Dictionary:
    from pyrad.dictionary import Dictionary

    return Dictionary(io.StringIO(_DICTIONARY))


@dataclass(frozen=True)
class RadiusServer:
    host: str
    port: int
    secret: bytes

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class RadiusReply:
    code: int
    reply_message: str | None
    state: bytes | None
    server: str


class RadiusFactor:
    type = "radius"
    label = "RADIUS"
    code_prompt = "Enter your RADIUS passcode (from your token or OTP app)."

    def new_credential(
        self, env: FactorEnv, *, credential_id: str, user: User
    ) -> tuple[MfaCredential, EnrollmentStart]:
        _servers(env)  # refuse to start an enrollment that cannot be checked
        credential = verifying_credential(env, credential_id, user, self.type)
        return credential, self.enrollment_view(env, credential, user)

    def enrollment_view(
        self, env: FactorEnv, credential: MfaCredential, user: User
    ) -> EnrollmentStart:
        return EnrollmentStart(
            credential_id=credential.id,
            instructions=(
                f"Your passcodes are checked by the RADIUS server as '{radius_username(env, user)}'. "
                "Enter a passcode from your token to prove it works."
            ),
        )

    def challenge(self, env: FactorEnv, credential: MfaCredential, user: User) -> str | None:
        return None

    def verify(
        self, env: FactorEnv, credential: MfaCredential, user: User, code: str
    ) -> Proof | None:
        if not _fits_user_password(code):
            return None  # no passcode is that long (or unencodable): never sent, a wrong code
        enrolling = credential.state == CredentialState.VERIFYING
        # The enrollment screens carry one code at a time: there the State of a second prompt
        # waits, sealed, on the verifying credential itself until the next code.
        sealed = credential.secret.hex() if enrolling and credential.secret else env.challenge_state
        state = self._open_state(env, credential, sealed)
        reply = authenticate(env, radius_username(env, user), code, state=state)
        next_state: str | None = None
        if reply.code == ACCESS_CHALLENGE:
            if not reply.state:
                raise ProviderUnavailable(
                    f"The RADIUS server {reply.server} asked a second question without a State; "
                    "check its configuration."
                )
            next_state = self._seal_state(env, credential, reply.state)
        if enrolling and (next_state or credential.secret):
            _keep_enrollment_state(env, credential, next_state)
        if next_state is not None:
            prompt = reply.reply_message or "The RADIUS server asks for another code."
            raise ChallengeRequired(prompt, next_state)
        return Proof() if reply.code == ACCESS_ACCEPT else None

    def test_settings(self, env: FactorEnv, user: User) -> str:
        """A request for a made-up user (never a real account, whose failures the server may
        count) with a random password: any signed answer, normally Access-Reject, proves the
        address, the port and the shared secret."""
        reply = authenticate(env, TEST_USERNAME, secrets.token_urlsafe(12))
        answer = {
            ACCESS_ACCEPT: "Access-Accept",
            ACCESS_REJECT: "Access-Reject",
            ACCESS_CHALLENGE: "Access-Challenge",
        }[reply.code]
        return (
            f"The RADIUS server {reply.server} answered a test request with {answer}, signed "
            "with a valid Message-Authenticator: the address, port and shared secret work."
        )

    # The State of an Access-Challenge travels through the caller (the login screen, the CLI)
    # between the two prompts; sealed to this credential so it cannot be forged or moved to
    # another user's login.
    @staticmethod
    def _seal_state(env: FactorEnv, credential: MfaCredential, state: bytes) -> str:
        return env.ctx.box.encrypt(
            state, table=STATE_TABLE, row_id=credential.id, field="state"
        ).hex()

    @staticmethod
    def _open_state(env: FactorEnv, credential: MfaCredential, sealed: str | None) -> bytes | None:
        if not sealed:
            return None
        try:
            return env.ctx.box.decrypt(
                bytes.fromhex(sealed), table=STATE_TABLE, row_id=credential.id, field="state"
            )
        except Exception:
            # Not ours (tampered, or from another login): start over with a first round.
            return None


def _keep_enrollment_state(env: FactorEnv, credential: MfaCredential, sealed: str | None) -> None:
    with env.ctx.db.write() as session:
        env.ctx.require_current_key(session)
        session.execute(
            update(MfaCredential)
            .where(
                col(MfaCredential.id) == credential.id,
                col(MfaCredential.state) == CredentialState.VERIFYING,
            )
            .values(secret=bytes.fromhex(sealed) if sealed else None)
        )


def _fits_user_password(code: str) -> bool:
    try:
        return len(code.encode("utf-8")) <= MAX_PASSWORD_BYTES
    except UnicodeEncodeError:  # a lone surrogate
        return False


def radius_username(env: FactorEnv, user: User) -> str:
    name = user.username
    if env.settings["radius.strip_domain"]:
        name = name.rsplit("\\", 1)[-1].split("@", 1)[0]
    return name


def _servers(env: FactorEnv) -> list[RadiusServer]:
    settings = env.settings
    if not settings["radius.server"] or not settings["radius.secret"]:
        raise ProviderUnavailable(
            "RADIUS is not set up: set the server and the shared secret in Server Settings."
        )
    servers = [
        RadiusServer(
            settings["radius.server"], settings["radius.port"], settings["radius.secret"].encode()
        )
    ]
    if settings["radius.failover_server"]:
        servers.append(
            RadiusServer(
                settings["radius.failover_server"],
                settings["radius.failover_port"],
                (settings["radius.failover_secret"] or settings["radius.secret"]).encode(),
            )
        )
    return servers


def authenticate(
    env: FactorEnv, username: str, password: str, *, state: bytes | None = None
) -> RadiusReply:
    """One Access-Request, to the first server and, if it does not answer, the failover server."""
    timeout = float(env.settings["radius.timeout"])
    problems: list[str] = []
    for server in _servers(env):
        request = _request(server, env.settings["radius.nas_identifier"], username, password, state)
        try:
            return _exchange(server, request, timeout)
        except _NoAnswer as silence:
            problems.append(str(silence))
    said = "; ".join(problems)  # one sentence, however many servers were asked
    raise ProviderUnavailable(
        f"{said[:1].upper()}{said[1:]}; try again later or ask an administrator."
    )


class _NoAnswer(Exception):
    """This server did not give a usable answer in time: try the next one."""


def _request(
    server: RadiusServer, nas_identifier: str, username: str, password: str, state: bytes | None
) -> AuthPacket:
    from pyrad.packet import AuthPacket

    packet = AuthPacket(secret=server.secret, dict=_dictionary())
    # First in the packet, as RFC 3579 advises and the Blast-RADIUS mitigations expect.
    packet.add_message_authenticator()
    try:
        packet["User-Name"] = username
        if nas_identifier:
            packet["NAS-Identifier"] = nas_identifier
    except ValueError:  # pyrad: an attribute holds 253 bytes at most
        raise ProviderUnavailable(
            "The username or radius.nas_identifier is longer than a RADIUS attribute holds "
            "(253 bytes); shorten it."
        ) from None
    packet["User-Password"] = packet.PwCrypt(password)
    if state is not None:
        packet["State"] = state
    return packet


def _exchange(server: RadiusServer, request: AuthPacket, timeout: float) -> RadiusReply:
    raw_request = request.RequestPacket()
    try:
        family, _, _, _, address = socket.getaddrinfo(
            server.host, server.port, type=socket.SOCK_DGRAM
        )[0]
    except (OSError, UnicodeError) as error:
        raise _NoAnswer(f"the RADIUS server {server.name} could not be found ({error})") from None
    deadline = time.monotonic() + timeout
    ignored: str | None = None
    with socket.socket(family, socket.SOCK_DGRAM) as connection:
        try:
            # Connected: only datagrams from the server's address arrive, and a closed port
            # shows at once (ICMP port unreachable) instead of after the timeout.
            connection.connect(address)
            connection.send(raw_request)
            while (left := deadline - time.monotonic()) > 0:
                connection.settimeout(left)
                raw = connection.recv(4096)
                problem = _check_reply(raw, request, server)
                if problem is None:
                    return _decode(raw[: struct.unpack("!H", raw[2:4])[0]], server)
                ignored = problem
        except TimeoutError:
            pass
        except OSError as error:
            raise _NoAnswer(
                f"the RADIUS server {server.name} is unreachable ({error.strerror or error})"
            ) from None
    detail = f" (a reply was ignored: {ignored})" if ignored else ""
    raise _NoAnswer(
        f"the RADIUS server {server.name} did not answer within {timeout:g} s{detail} (check "
        "its address, port and shared secret)"
    )


def _check_reply(raw: bytes, request: AuthPacket, server: RadiusServer) -> str | None:
    """None for a genuine reply to ``request``, else why it is ignored (it may be noise or a
    forgery: the real reply can still come). A reply signed with our secret but without a valid
    Message-Authenticator is refused at once: a server to fix, not one to wait for."""
    secret = server.secret
    if len(raw) < 20:
        return "too short"
    code, identifier, length = struct.unpack("!BBH", raw[:4])
    if length < 20 or length > len(raw):
        return "bad length"
    raw = raw[:length]
    if identifier != request.id or code not in (ACCESS_ACCEPT, ACCESS_REJECT, ACCESS_CHALLENGE):
        return "not a reply to this request"
    attributes = raw[20:]
    expected = hashlib.md5(raw[:4] + request.authenticator + attributes + secret).digest()
    if not hmac.compare_digest(expected, raw[4:20]):
        return "wrong Response Authenticator (is the shared secret right?)"
    zeroed = _zero_message_authenticator(attributes)
    if zeroed is None:
        raise ProviderUnavailable(
            f"The RADIUS server {server.name} sent a reply without a valid Message-Authenticator "
            "and it was refused (Blast-RADIUS protection); make the server send one in every "
            "reply."
        )
    position, blanked = zeroed
    signature = hmac.new(secret, raw[:4] + request.authenticator + blanked, hashlib.md5).digest()
    if not hmac.compare_digest(signature, attributes[position : position + 16]):
        raise ProviderUnavailable(
            f"The RADIUS server {server.name} sent a reply with a wrong Message-Authenticator; "
            "it was refused."
        )
    return None


def _zero_message_authenticator(attributes: bytes) -> tuple[int, bytes] | None:
    """Where the one Message-Authenticator value sits, and the attributes with it zeroed."""
    offset = 0
    found: int | None = None
    while offset < len(attributes):
        if offset + 2 > len(attributes):
            return None
        kind, size = attributes[offset], attributes[offset + 1]
        if size < 2 or offset + size > len(attributes):
            return None
        if kind == MESSAGE_AUTHENTICATOR:
            if size != 18 or found is not None:
                return None
            found = offset + 2
        offset += size
    if found is None:
        return None
    return found, attributes[:found] + bytes(16) + attributes[found + 16 :]


def _decode(raw: bytes, server: RadiusServer) -> RadiusReply:
    from pyrad.packet import Packet

    try:
        packet = Packet(packet=raw, secret=server.secret, dict=_dictionary())
        messages = packet.get("Reply-Message") or []
        states = packet.get("State") or []
    except Exception:  # a signed reply we cannot read: the server's problem, said plainly
        raise ProviderUnavailable(
            f"The RADIUS server {server.name} sent a reply that could not be decoded."
        ) from None
    return RadiusReply(
        code=packet.code,
        # The server's words reach a terminal: no control characters.
        reply_message=printable(" ".join(messages)) or None,
        state=states[0] if states else None,
        server=server.name,
    )
