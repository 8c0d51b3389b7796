"""The CLI with a Yubikey: ``users set-mfa --type yubikey`` (configure now from one line on
standard input) and ``verify NAME`` with real Yubico OTPs, in local mode and against the
YubiCloud 2.0 stand-in (exit 3, not counted, when the validation server is down)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mfa_tui.core.factors import enrollment_code
from tests.cli.conftest import Cli, assert_one_error_line
from tests.helpers.yubico_standin import (
    SimulatedYubikey,
    YubicoStandin,
    closed_port_url,
    running_standin,
)

REFUSED = "mfa-tui: Refused: the code was not accepted."


@pytest.fixture
def standin() -> Iterator[YubicoStandin]:
    with running_standin() as server:
        yield server


def test_local_mode_set_mfa_with_the_aes_key_then_verify_each_touch_once(ready: Cli) -> None:
    ready.ok("settings", "set", "mfa.supported", "totp,yubikey")
    ready.ok("settings", "set", "yubikey.mode", "local")
    ready.ok("users", "add", "bob")
    key = SimulatedYubikey()

    # A script gives the touch and the key's secrets on one line (the enrollment code format).
    line = enrollment_code(key.touch(), key.enrollment_fields())
    configured = ready.ok("users", "set-mfa", "bob", "--type", "yubikey", stdin=line + "\n")
    assert "bob: yubikey, configured." in configured.out
    assert ready.users()["bob"]["mfa_status"] == "configured"

    otp = key.touch()
    accepted = ready("verify", "bob", stdin=otp + "\n")
    assert (accepted.code, accepted.err_lines) == (0, ["Code accepted."])
    assert_one_error_line(ready("verify", "bob", stdin=otp + "\n"), 1)  # a replay
    other = ready("verify", "bob", stdin=SimulatedYubikey().touch() + "\n")
    assert other.err == REFUSED + "\n"
    # --send sends nothing for a Yubikey and the touch is checked as usual.
    assert ready("verify", "bob", "--send", stdin=key.touch() + "\n").code == 0


def test_local_mode_set_mfa_refuses_a_touch_without_the_key(ready: Cli) -> None:
    ready.ok("settings", "set", "mfa.supported", "totp,yubikey")
    ready.ok("users", "add", "bob")
    key = SimulatedYubikey()
    wrong = {**key.enrollment_fields(), "aes_key": "11" * 16}
    refused = ready(
        "users", "set-mfa", "bob", "--type", "yubikey", stdin=enrollment_code(key.touch(), wrong)
    )
    assert_one_error_line(refused, 1, "not accepted")
    assert ready.users()["bob"]["mfa_status"] == "none"


def test_server_mode_verify_and_a_server_that_is_down(
    ready: Cli, standin: YubicoStandin, refused_port: int
) -> None:
    ready.ok("settings", "set", "mfa.supported", "totp,yubikey")
    ready.ok("settings", "set", "yubikey.mode", "server")
    ready.ok("settings", "set", "yubikey.server_url", standin.url)
    ready.ok("settings", "set", "yubikey.client_id", standin.client_id)
    ready.ok("settings", "set", "yubikey.api_key", "--value-stdin", stdin=standin.api_key_b64)
    ready.ok("settings", "set", "lockout.attempts", "1")
    assert standin.api_key_b64 not in ready.ok("settings", "show").out  # masked
    ready.ok("users", "add", "bob")
    key = standin.register(SimulatedYubikey())
    ready.ok("users", "set-mfa", "bob", "--type", "yubikey", stdin=key.touch() + "\n")

    otp = key.touch()
    assert ready("verify", "bob", stdin=otp + "\n").code == 0
    replay = ready("verify", "bob", stdin=otp + "\n")  # the server answers REPLAYED_OTP
    assert replay.err == REFUSED + "\n"
    ready.ok("users", "unlock", "bob")

    ready.ok("settings", "set", "yubikey.server_url", closed_port_url(refused_port))
    for _ in range(2):
        down = ready("verify", "bob", stdin=key.touch() + "\n")
        assert_one_error_line(down, 3, "validation server did not answer")
    assert ready.users()["bob"]["locked"] is False  # not the user's fault: never counted

    ready.ok("settings", "set", "yubikey.server_url", standin.url)
    assert ready("verify", "bob", stdin=key.touch() + "\n").code == 0
