"""TOTP (RFC 6238) with an injected time, and the otpauth URI that authenticator apps scan.

pyotp computes the codes; this module adds what a login needs: which time-step matched (so the
caller can refuse a replay with one conditional UPDATE) and constant-time comparison over the
whole drift window.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import pyotp

ALGORITHMS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}
# RFC 4226 recommends 160 bits; longer secrets make the QR code too big for 80x24.
SECRET_BYTES = 20


@dataclass(frozen=True)
class TotpParameters:
    digits: int = 6
    period: int = 30
    algorithm: str = "SHA1"

    def __post_init__(self) -> None:
        if self.digits not in (6, 8):
            raise ValueError("TOTP codes have 6 or 8 digits.")
        if self.algorithm not in ALGORITHMS:
            raise ValueError("The TOTP algorithm is SHA1, SHA256 or SHA512.")
        if not 10 <= self.period <= 300:
            raise ValueError("The TOTP period is between 10 and 300 seconds.")


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def base32_secret(secret: bytes) -> str:
    return base64.b32encode(secret).decode("ascii").rstrip("=")


def grouped_secret(secret: bytes) -> str:
    """The base32 secret in groups of four, for typing into an app by hand."""
    text = base32_secret(secret)
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def time_step(unix_time: float, period: int) -> int:
    return int(unix_time // period)


def code_at_step(secret: bytes, step: int, params: TotpParameters) -> str:
    hotp = pyotp.HOTP(
        base32_secret(secret), digits=params.digits, digest=ALGORITHMS[params.algorithm]
    )
    return hotp.at(step)


def code_at(secret: bytes, unix_time: float, params: TotpParameters) -> str:
    return code_at_step(secret, time_step(unix_time, params.period), params)


def matching_step(
    secret: bytes, code: str, unix_time: float, params: TotpParameters, drift: int
) -> int | None:
    """The time-step within ±drift whose code equals ``code``, or None.

    Every candidate is compared (no early exit), each in constant time.
    """
    candidate = code.strip().replace(" ", "")
    # isascii: str.isdigit accepts e.g. Arabic-Indic digits, which compare_digest cannot compare.
    if len(candidate) != params.digits or not (candidate.isascii() and candidate.isdigit()):
        return None
    now_step = time_step(unix_time, params.period)
    matched: int | None = None
    for step in range(now_step - drift, now_step + drift + 1):
        if hmac.compare_digest(code_at_step(secret, step, params), candidate) and matched is None:
            matched = step
    return matched


def otpauth_uri(secret: bytes, *, issuer: str, account: str, params: TotpParameters) -> str:
    """otpauth://totp/Issuer:account?secret=…&issuer=… with digits, period and algorithm only when
    they differ from 6 / 30 s / SHA1 (most apps assume those, and a shorter URI is a smaller QR)."""
    query: dict[str, str | int] = {"secret": base32_secret(secret), "issuer": issuer}
    if params.algorithm != "SHA1":
        query["algorithm"] = params.algorithm
    if params.digits != 6:
        query["digits"] = params.digits
    if params.period != 30:
        query["period"] = params.period
    label = quote(f"{issuer}:{account}", safe=":@")
    return f"otpauth://totp/{label}?{urlencode(query, quote_via=quote)}"
