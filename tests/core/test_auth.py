"""The password step: rehash on login, slowed (never locked) after wrong passwords, one answer for all failures."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import update
from sqlmodel import col, select

from mfa_tui.core import passwords
from mfa_tui.core.access import Actor
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.errors import NotFound
from mfa_tui.core.models import User
from mfa_tui.core.services.auth import FREE_PASSWORD_FAILURES, AuthService, password_delay
from mfa_tui.core.services.users import GeneralFields, UserService

PASSWORD = "correct horse battery"


def _stored_hash(ctx: Context, username: str) -> str:
    with ctx.db.read() as session:
        return session.exec(select(User.password_hash).where(User.username == username)).one() or ""


def test_a_hash_made_with_old_parameters_is_replaced_at_login(
    ctx: Context, cli_actor: Actor
) -> None:
    UserService(ctx).create(cli_actor, "ada", password=PASSWORD)
    weak = PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)
    with ctx.db.write() as session:
        session.execute(update(User).where(col(User.username) == "ada").values(password_hash=weak))

    assert AuthService(ctx).check_password("ada", PASSWORD).reason == "ok"

    rehashed = _stored_hash(ctx, "ada")
    assert rehashed != weak
    assert not passwords.needs_rehash(rehashed)
    assert passwords.verify_password(rehashed, PASSWORD)


def test_wrong_password_and_unknown_user_get_the_same_answer(
    ctx: Context, cli_actor: Actor
) -> None:
    UserService(ctx).create(cli_actor, "ada", password=PASSWORD)
    auth = AuthService(ctx)
    wrong = auth.check_password("ada", "not the password")
    unknown = auth.check_password("nobody", PASSWORD)
    assert (
        (wrong.reason, wrong.message)
        == (unknown.reason, unknown.message)
        == (
            "wrong",
            "The username or password is not correct.",
        )
    )


def test_wrong_passwords_slow_the_next_try_but_never_lock(
    ctx: Context, clock: FixedClock, cli_actor: Actor
) -> None:
    UserService(ctx).create(cli_actor, "ada", password=PASSWORD)
    auth = AuthService(ctx)
    for _ in range(FREE_PASSWORD_FAILURES):
        assert auth.check_password("ada", "wrong password").reason == "wrong"

    # Past the free failures every try waits, the right password too.
    throttled = auth.check_password("ada", PASSWORD)
    assert throttled.reason == "throttled"
    assert throttled.retry_after_seconds >= password_delay(FREE_PASSWORD_FAILURES)

    clock.advance(seconds=password_delay(FREE_PASSWORD_FAILURES) + 1)
    outcome = auth.check_password("ada", PASSWORD)
    assert outcome.reason == "ok"
    assert outcome.user is not None and not outcome.user.locked


def test_a_disabled_account_says_so_only_after_the_right_password(
    ctx: Context, cli_actor: Actor
) -> None:
    users = UserService(ctx)
    users.create(cli_actor, "admin", role="admin", password=PASSWORD)
    ada = users.create(cli_actor, "ada", password=PASSWORD)
    users.update_general(cli_actor, ada.id, ada.version, GeneralFields(enabled=False))
    auth = AuthService(ctx)
    assert auth.check_password("ada", "wrong password").reason == "wrong"
    assert auth.check_password("ada", PASSWORD).reason == "disabled"


def test_an_account_deleted_between_the_login_steps_is_one_sentence(
    ctx: Context, cli_actor: Actor
) -> None:
    users = UserService(ctx)
    ada = users.create(cli_actor, "ada", password=PASSWORD)
    auth = AuthService(ctx)
    assert auth.check_password("ada", PASSWORD).user is not None
    users.delete(cli_actor, "ada")  # staff, while ada types her code
    for step in (auth.next_step, auth.after_second_factor):
        with pytest.raises(NotFound, match=r"^This account no longer exists\.$"):
            step(ada.id)
