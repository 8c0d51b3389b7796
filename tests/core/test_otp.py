"""TOTP against RFC 6238 Appendix B, the drift window, and the otpauth URI an app scans."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlparse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mfa_tui.core.otp import (
    TotpParameters,
    base32_secret,
    code_at,
    grouped_secret,
    matching_step,
    otpauth_uri,
    time_step,
)

# RFC 6238 Appendix B: the seed is "1234567890" repeated to the hash's block length.
SEEDS = {
    "SHA1": b"12345678901234567890",
    "SHA256": b"12345678901234567890123456789012",
    "SHA512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
RFC_6238_VECTORS = [
    (59, "SHA1", "94287082"),
    (59, "SHA256", "46119246"),
    (59, "SHA512", "90693936"),
    (1111111109, "SHA1", "07081804"),
    (1111111109, "SHA256", "68084774"),
    (1111111109, "SHA512", "25091201"),
    (1111111111, "SHA1", "14050471"),
    (1111111111, "SHA256", "67062674"),
    (1111111111, "SHA512", "99943326"),
    (1234567890, "SHA1", "89005924"),
    (1234567890, "SHA256", "91819424"),
    (1234567890, "SHA512", "93441116"),
    (2000000000, "SHA1", "69279037"),
    (2000000000, "SHA256", "90698825"),
    (2000000000, "SHA512", "38618901"),
    (20000000000, "SHA1", "65353130"),
    (20000000000, "SHA256", "77737706"),
    (20000000000, "SHA512", "47863826"),
]


@pytest.mark.parametrize(("unix_time", "algorithm", "expected"), RFC_6238_VECTORS)
def test_rfc6238_appendix_b(unix_time: int, algorithm: str, expected: str) -> None:
    params = TotpParameters(digits=8, period=30, algorithm=algorithm)
    assert code_at(SEEDS[algorithm], unix_time, params) == expected


def test_seeds_have_the_rfc_lengths() -> None:
    assert {name: len(seed) for name, seed in SEEDS.items()} == {
        "SHA1": 20,
        "SHA256": 32,
        "SHA512": 64,
    }


@pytest.mark.parametrize(("unix_time", "algorithm", "expected"), RFC_6238_VECTORS)
def test_rfc_codes_match_at_their_own_step(unix_time: int, algorithm: str, expected: str) -> None:
    params = TotpParameters(digits=8, algorithm=algorithm)
    assert matching_step(SEEDS[algorithm], expected, unix_time, params, 0) == unix_time // 30


SHA1_8 = TotpParameters(digits=8, period=30, algorithm="SHA1")
SEED = SEEDS["SHA1"]
NOW = 1111111111  # step 37037037, code 14050471


def test_matching_step_accepts_codes_within_the_drift_window() -> None:
    now_step = time_step(NOW, 30)
    for offset in (-1, 0, 1):
        code = code_at(SEED, NOW + offset * 30, SHA1_8)
        assert matching_step(SEED, code, NOW, SHA1_8, 1) == now_step + offset
    earlier = code_at(SEED, NOW - 60, SHA1_8)
    assert matching_step(SEED, earlier, NOW, SHA1_8, 2) == now_step - 2


def test_matching_step_refuses_codes_outside_the_drift_window() -> None:
    for offset in (-2, 2, 5):
        code = code_at(SEED, NOW + offset * 30, SHA1_8)
        assert matching_step(SEED, code, NOW, SHA1_8, 1) is None
    neighbour = code_at(SEED, NOW + 30, SHA1_8)
    assert matching_step(SEED, neighbour, NOW, SHA1_8, 0) is None


def test_matching_step_tolerates_spaces_but_not_wrong_shapes() -> None:
    assert matching_step(SEED, " 1405 0471 ", NOW, SHA1_8, 0) == time_step(NOW, 30)
    for bad in ("1405047", "140504711", "1405047a", "abcdefgh", "", "-1405047", "١٤٠٥٠٤٧١"):
        assert matching_step(SEED, bad, NOW, SHA1_8, 1) is None


def test_matching_step_refuses_an_eight_digit_code_for_six_digit_parameters() -> None:
    six = TotpParameters()
    assert matching_step(SEED, "14050471", NOW, six, 1) is None
    assert matching_step(SEED, "050471", NOW, six, 0) == time_step(NOW, 30)


def _parse(uri: str) -> tuple[str, str, dict[str, list[str]]]:
    parsed = urlparse(uri)
    return parsed.scheme, parsed.netloc + unquote(parsed.path), parse_qs(parsed.query)


def test_otpauth_uri_with_default_parameters_leaves_them_out() -> None:
    uri = otpauth_uri(SEED, issuer="Acme Corp", account="zoë@example.com", params=TotpParameters())
    scheme, where, query = _parse(uri)
    assert scheme == "otpauth"
    assert where == "totp/Acme Corp:zoë@example.com"
    assert query == {"secret": [base32_secret(SEED)], "issuer": ["Acme Corp"]}
    assert " " not in uri


def test_otpauth_uri_carries_parameters_that_differ_from_the_defaults() -> None:
    params = TotpParameters(digits=8, period=60, algorithm="SHA256")
    _, where, query = _parse(otpauth_uri(SEED, issuer="Acme", account="bob", params=params))
    assert where == "totp/Acme:bob"
    assert query == {
        "secret": [base32_secret(SEED)],
        "issuer": ["Acme"],
        "digits": ["8"],
        "period": ["60"],
        "algorithm": ["SHA256"],
    }


@pytest.mark.parametrize(
    ("params", "present"),
    [
        (TotpParameters(digits=8), {"digits"}),
        (TotpParameters(period=60), {"period"}),
        (TotpParameters(algorithm="SHA512"), {"algorithm"}),
    ],
)
def test_otpauth_uri_carries_only_the_parameters_that_differ(
    params: TotpParameters, present: set[str]
) -> None:
    _, _, query = _parse(otpauth_uri(SEED, issuer="Acme", account="bob", params=params))
    assert set(query) - {"secret", "issuer"} == present


def test_grouped_secret_groups_the_base32_secret_by_four() -> None:
    assert base32_secret(SEED) == "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    assert grouped_secret(SEED) == "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ"
    # 3 bytes → 5 base32 characters (padding dropped): the last group is shorter.
    assert grouped_secret(b"abc") == "MFRG G"


@settings(max_examples=60, deadline=None)
@given(
    secret=st.binary(min_size=14, max_size=64),  # pyotp refuses < 112 bits
    unix_time=st.integers(min_value=0, max_value=2**34),
    digits=st.sampled_from([6, 8]),
    period=st.sampled_from([15, 30, 60]),
    algorithm=st.sampled_from(["SHA1", "SHA256", "SHA512"]),
)
def test_a_code_always_matches_its_own_step(
    secret: bytes, unix_time: int, digits: int, period: int, algorithm: str
) -> None:
    params = TotpParameters(digits=digits, period=period, algorithm=algorithm)
    code = code_at(secret, unix_time, params)
    assert len(code) == digits and code.isdigit()
    assert matching_step(secret, code, unix_time, params, 0) == time_step(unix_time, period)
