"""``users verify-caller``, ``users tap create|revoke`` and ``users invite``: exit codes per
SPEC §5 and one line on stderr for every failure, on SQLite and PostgreSQL."""

from __future__ import annotations

import pyotp

from mfa_tui.core.access import Actor
from mfa_tui.core.services.access_pass import AccessPasses
from mfa_tui.core.services.mfa import MfaService
from tests.cli.conftest import Cli, assert_one_error_line, configure_totp

NEW_PASSWORD = "Brand-New-Secret-77"


def test_verify_caller_takes_the_code_once_and_records_it(ready: Cli) -> None:
    ready.ok("users", "add", "bob")
    secret = configure_totp(ready, "bob")
    code = pyotp.TOTP(secret).now()
    result = ready.ok("users", "verify-caller", "bob", stdin=code + "\n")
    assert result.out.startswith("bob: Caller verified at ")
    # Replayed, or wrong: refused (1) with one line.
    assert_one_error_line(
        ready("users", "verify-caller", "bob", stdin=code + "\n"), 1, "Not verified"
    )
    assert_one_error_line(ready("users", "verify-caller", "ghost", stdin="1\n"), 2, "ghost")
    assert_one_error_line(ready("users", "verify-caller", "bob"), 2, "standard input")
    assert_one_error_line(
        ready("users", "verify-caller", "bob", "--lost", "--backup-code"), 2, "not both"
    )


def test_verify_caller_with_a_backup_code_uses_it_up(ready: Cli) -> None:
    ready.ok("users", "add", "bob")
    configure_totp(ready, "bob")
    context = ready.context()
    try:
        codes = MfaService(context).generate_backup_codes(Actor.cli(), "bob")
    finally:
        context.close()
    args = ("users", "verify-caller", "bob", "--backup-code")
    ready.ok(*args, stdin=codes[0] + "\n")
    assert_one_error_line(ready(*args, stdin=codes[0] + "\n"), 1, "Not verified")


def test_verify_caller_lost_without_an_address_says_what_to_do(ready: Cli) -> None:
    ready.ok("users", "add", "bob")
    configure_totp(ready, "bob")
    assert_one_error_line(
        ready("users", "verify-caller", "bob", "--lost", stdin="123456\n"), 2, "backup code"
    )


def test_tap_create_prints_the_pass_once_and_revoke_ends_it(ready: Cli) -> None:
    ready.ok("users", "add", "bob", "--password-stdin", stdin=NEW_PASSWORD + "\n")
    configure_totp(ready, "bob")
    created = ready.ok("users", "tap", "create", "bob", "--reason", "ticket 12")
    code = created.out.strip()
    assert len(code) == 19 and "single use" in created.err
    context = ready.context()
    try:
        assert AccessPasses(context).active_tap("bob") is not None
    finally:
        context.close()
    ready.ok("users", "tap", "revoke", "bob")
    assert_one_error_line(ready("users", "tap", "revoke", "bob"), 2, "no temporary access pass")
    assert_one_error_line(ready("users", "tap", "create", "ghost"), 2, "ghost")
    ready.ok("users", "add", "plain")
    assert_one_error_line(ready("users", "tap", "create", "plain"), 2, "no MFA type")


def test_invite_prints_a_code_for_a_user_without_a_factor(ready: Cli) -> None:
    ready.ok("users", "add", "dave")
    ready.ok("users", "set-mfa", "dave", "--type", "totp", "--configure-later")
    result = ready.ok("users", "invite", "dave")
    code = result.out.strip()
    assert len(code) == 19 and "single use" in result.err
    assert "otpauth" not in result.out + result.err
    context = ready.context()
    try:
        redeemed = AccessPasses(context).redeem_invitation("dave", code, NEW_PASSWORD)
    finally:
        context.close()
    assert redeemed.mfa_type == "totp"

    ready.ok("users", "add", "bob")
    configure_totp(ready, "bob")
    assert_one_error_line(ready("users", "invite", "bob"), 2, "working factor")
