"""``verify NAME``: exit 0 accepted, 1 refused — one identical line for wrong, locked and unknown.

The CLI reads the system clock, so codes are computed for the real current time (never a sleep);
the setup enrolls at a fixed past time so it uses up no time-step the CLI will check.
"""

from __future__ import annotations

import pyotp

from mfa_tui.core.access import Actor
from mfa_tui.core.services.users import GeneralFields, UserService
from tests.cli.conftest import (
    Cli,
    assert_one_error_line,
    configure_totp,
    generate_backup_codes,
    verify_with_current_code,
    wrong_code,
)

REFUSED = "mfa-tui: Refused: the code was not accepted."


def test_verify_accepts_the_current_code_once_and_refuses_a_replay(ready: Cli) -> None:
    ready.ok("users", "add", "bob")
    secret = configure_totp(ready, "bob")

    code = pyotp.TOTP(secret).now()
    accepted = ready("verify", "bob", stdin=code + "\n")
    assert accepted.code == 0, accepted
    assert accepted.err_lines == ["Code accepted."]
    assert accepted.out == ""

    # The same code again is a replay (a drift of one step keeps it valid, but it is used up).
    replay = ready("verify", "bob", stdin=code + "\n")
    assert_one_error_line(replay, 1)
    assert replay.err_lines == [REFUSED]


def test_wrong_code_unknown_user_and_locked_account_get_the_same_answer(ready: Cli) -> None:
    ready.ok("users", "add", "bob")
    secret = configure_totp(ready, "bob")
    ready.ok("settings", "set", "lockout.attempts", "2")

    wrong = ready("verify", "bob", stdin=wrong_code(secret) + "\n")
    unknown = ready("verify", "nobody", stdin=wrong_code(secret) + "\n")
    assert_one_error_line(wrong, 1)
    assert_one_error_line(unknown, 1)
    assert wrong.err == unknown.err == REFUSED + "\n"
    assert wrong.out == unknown.out == ""

    # The second wrong code uses up the budget: now even the right code is refused, alike.
    assert ready("verify", "bob", stdin=wrong_code(secret) + "\n").code == 1
    assert ready.users()["bob"]["locked"] is True
    locked = verify_with_current_code(ready, "bob", secret)
    assert_one_error_line(locked, 1)
    assert locked.err == REFUSED + "\n"

    unlocked = ready.ok("users", "unlock", "bob")
    assert "bob: unlocked." in unlocked.out
    assert ready.users()["bob"]["locked"] is False
    assert verify_with_current_code(ready, "bob", secret).code == 0


def test_a_backup_code_works_once(ready: Cli) -> None:
    ready.ok("users", "add", "bob")
    configure_totp(ready, "bob")
    codes = generate_backup_codes(ready, "bob")

    first = ready("verify", "bob", stdin=codes[0].lower() + "\n")
    assert first.code == 0, first
    again = ready("verify", "bob", stdin=codes[0] + "\n")
    assert_one_error_line(again, 1)
    assert again.err == REFUSED + "\n"
    assert ready("verify", "bob", stdin=codes[1] + "\n").code == 0


def test_a_user_who_needs_no_second_factor(ready: Cli) -> None:
    ready.ok("users", "add", "bob")

    passed = ready("verify", "bob", stdin="anything\n")
    assert passed.code == 0, passed
    assert passed.err_lines == [
        "No second factor is required for this user under the current policy."
    ]

    required = ready("verify", "bob", "--require", stdin="anything\n")
    assert_one_error_line(required, 1, "required")


def test_policy_decides_who_needs_a_second_factor(ready: Cli) -> None:
    ready.ok("users", "add", "bob")
    secret = configure_totp(ready, "bob")
    ready.ok("users", "add", "plain")

    ready.ok("settings", "set", "mfa.usage", "skipped")
    skipped = ready("verify", "bob", "--require", stdin=wrong_code(secret) + "\n")
    assert_one_error_line(skipped, 1, "required")
    assert ready("verify", "bob", stdin="x\n").code == 0

    # Required: a user without a type must use the default type, which they have not enrolled.
    ready.ok("settings", "set", "mfa.usage", "required")
    refused = ready("verify", "plain", stdin="123456\n")
    assert_one_error_line(refused, 1)
    assert refused.err == REFUSED + "\n"
    assert verify_with_current_code(ready, "bob", secret).code == 0


def test_a_disabled_user_is_refused_like_an_unknown_one(ready: Cli) -> None:
    ready.ok("users", "add", "bob")
    secret = configure_totp(ready, "bob")
    ready.ok("users", "add", "plain")
    context = ready.context()
    try:
        users = UserService(context)
        for name in ("bob", "plain"):
            view = users.get(name)
            users.update_general(Actor.cli(), view.id, view.version, GeneralFields(enabled=False))
    finally:
        context.close()
    assert ready.users()["bob"]["enabled"] is False

    with_factor = verify_with_current_code(ready, "bob", secret)
    assert_one_error_line(with_factor, 1)
    assert with_factor.err == REFUSED + "\n"
    # A disabled user without MFA is not "no second factor needed".
    without_factor = ready("verify", "plain", stdin="123456\n")
    assert_one_error_line(without_factor, 1)
    assert without_factor.err == REFUSED + "\n"


def test_verify_needs_a_line_on_stdin(sqlite_ready: Cli) -> None:
    sqlite_ready.ok("users", "add", "bob")
    assert_one_error_line(sqlite_ready("verify", "bob", stdin=""), 2, "standard input")
