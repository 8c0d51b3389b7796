"""Pilot tests of the console against a real database (SQLite and PostgreSQL, from ``ctx``).

``console(ctx)`` runs ``MfaTuiApp`` headless on the test's database and clock; the helpers below
drive it the way a person would (keys, clicks) and read the database back to prove what happened.
Workers run service calls in threads, so every step ends with ``settle`` (wait for the workers and
for the messages they posted) or ``wait_until`` (for a condition, with a clear failure).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlmodel import select
from textual.pilot import Pilot
from textual.widgets import Input
from textual.worker import WorkerCancelled

from mfa_tui.core import passwords
from mfa_tui.core.access import Actor
from mfa_tui.core.audit import AuditRecord, list_events
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.models import Lockout, MfaCredential, Role, User
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.users import UserService, UserView
from mfa_tui.ui.app import MfaTuiApp
from mfa_tui.ui.widgets.user_table import UserTable
from tests.helpers.qr_decode import screen_text

ADMIN = "root"
ADMIN_PASSWORD = "Correct-Horse-Battery-9"
PASSWORD = "Plain-User-Secret-42"
SIZE = (100, 32)


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Still argon2id, at the smallest cost: these tests are about the screens, not the hash."""
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(passwords, "hasher", lambda: cheap)


@pytest.fixture
def admin(ctx: Context) -> UserView:
    return add_user(ctx, ADMIN, role=Role.ADMIN, password=ADMIN_PASSWORD)


# Setting up the database ---------------------------------------------------------------------------


def add_user(
    ctx: Context,
    name: str,
    *,
    role: str = Role.USER,
    password: str | None = PASSWORD,
    **fields: Any,
) -> UserView:
    return UserService(ctx).create(Actor.cli(), name, role=role, password=password, **fields)


def secret_of(uri: str) -> str:
    """The base32 secret an authenticator app would take from an otpauth URI."""
    return parse_qs(urlparse(uri).query)["secret"][0]


def code_now(secret: str, clock: FixedClock) -> str:
    return pyotp.TOTP(secret).at(clock.now())


def enroll_totp(ctx: Context, clock: FixedClock, name: str) -> str:
    """Give ``name`` a working authenticator (as the CLI would) and return its base32 secret.

    The time-step used to prove it is spent, so the clock moves on to the next one.
    """
    mfa = MfaService(ctx)
    start = mfa.begin_enrollment(Actor.cli(), name, "totp")
    assert start.provisioning_uri is not None
    secret = secret_of(start.provisioning_uri)
    assert mfa.confirm_code(Actor.cli(), start.credential_id, code_now(secret, clock))
    mfa.activate(Actor.cli(), name, start.credential_id)
    clock.advance(seconds=30)
    return secret


# Reading the database back -------------------------------------------------------------------------


def user_row(ctx: Context, name: str) -> User | None:
    with ctx.db.read() as session:
        return session.exec(select(User).where(User.username_key == name.casefold())).one_or_none()


def credentials(ctx: Context, name: str) -> list[tuple[str, str]]:
    """(type, state) of every MFA credential of ``name``."""
    user = user_row(ctx, name)
    assert user is not None
    with ctx.db.read() as session:
        rows = session.exec(select(MfaCredential).where(MfaCredential.user_id == user.id)).all()
        return sorted((row.type, row.state) for row in rows)


def lockout_row(ctx: Context, name: str) -> Lockout | None:
    user = user_row(ctx, name)
    assert user is not None
    with ctx.db.read() as session:
        return session.get(Lockout, user.id)


def audit_events(ctx: Context, action: str | None = None) -> list[AuditRecord]:
    """Newest first, optionally only one action."""
    with ctx.db.read() as session:
        events = list_events(session)
    return [event for event in events if action is None or event.action == action]


# Driving the console -------------------------------------------------------------------------------


@asynccontextmanager
async def console(
    ctx: Context, clock: FixedClock, size: tuple[int, int] = SIZE
) -> AsyncIterator[Pilot[None]]:
    """The app on this database and clock, past the start screen (first run or login)."""
    app = MfaTuiApp(context=ctx, clock=clock)
    _keep_notifications(app)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)  # the worker that opens the database has looked for users
        await wait_until(
            pilot,
            lambda: type(app.screen).__name__ in ("LoginScreen", "FirstRunScreen"),
            "the login or first-run screen",
        )
        yield pilot


async def settle(pilot: Pilot[Any], timeout: float = 15.0) -> None:
    """Wait until no worker runs and what they posted has been handled."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    while True:
        try:
            await app.workers.wait_for_complete()
        except WorkerCancelled:
            # A screen that closed took its workers with it (the worker that closed it may be
            # among them, still returning), or the app is exiting: those are done too.
            if app.return_code is not None:
                return
        await pilot.pause()
        if not any(worker.is_running for worker in app.workers):
            return
        assert time.monotonic() < deadline, f"workers still running: {list(app.workers)}"


async def wait_until(
    pilot: Pilot[Any], condition: Callable[[], object], what: str, timeout: float = 15.0
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, (
            f"timed out waiting for {what}; the screen is {type(pilot.app.screen).__name__}:\n"
            + "\n".join(screen_text(pilot.app))
        )
        await settle(pilot)
        await pilot.pause(0.01)


def screen_name(pilot: Pilot[Any]) -> str:
    return type(pilot.app.screen).__name__


async def on_screen(pilot: Pilot[Any], name: str) -> None:
    """Wait until the screen called ``name`` is the active one, mounted, with its workers done."""
    await wait_until(
        pilot, lambda: screen_name(pilot) == name and pilot.app.screen.is_mounted, f"the {name}"
    )
    await settle(pilot)


def shown(pilot: Pilot[Any]) -> str:
    """Everything on the terminal now, as text."""
    return "\n".join(screen_text(pilot.app))


def static_text(pilot: Pilot[Any], selector: str) -> str:
    return str(pilot.app.screen.query_one(selector).render())


def _keep_notifications(app: MfaTuiApp) -> None:
    """Record every toast: Textual drops them after a few seconds, a slow machine may look later."""
    seen: list[str] = []
    show = app.notify

    def notify(message: str, *args: Any, **kwargs: Any) -> None:
        seen.append(str(message))
        show(message, *args, **kwargs)

    app.notify = notify  # type: ignore[method-assign]
    app.seen_notifications = seen  # type: ignore[attr-defined]


def notifications(pilot: Pilot[Any]) -> list[str]:
    """Every message shown as a toast so far, oldest first."""
    return list(pilot.app.seen_notifications)


async def fill(pilot: Pilot[Any], selector: str, value: str) -> None:
    """Put ``value`` in an input at once (typing long secrets key by key is slow in Pilot)."""
    field = pilot.app.screen.query_one(selector, Input)
    field.focus()
    field.value = value


async def click(pilot: Pilot[Any], selector: str) -> None:
    """Click a widget once it is on top at its place (scrolled into view, no menu over it)."""
    widget = pilot.app.screen.query_one(selector)

    def on_top() -> bool:
        region = widget.region
        if not region or region.offset not in pilot.app.screen.size.region:
            return False
        try:
            found, _ = pilot.app.screen.get_widget_at(*region.offset)
        except Exception:  # nothing there yet
            return False
        if found is not widget and widget not in found.ancestors:
            return False
        # A Button ignores clicks while it still shows its last press (``-active``, 0.2 s).
        return not widget.has_class("-active")

    if not on_top():
        widget.scroll_visible(animate=False, immediate=True)
    await wait_until(pilot, on_top, f"{selector} to be clickable")
    assert await pilot.click(widget), f"the click missed {selector}"
    await settle(pilot)


async def log_in(pilot: Pilot[Any], username: str, password: str) -> None:
    """Fill in Username and Password on the login screen and press Enter in Password."""
    assert screen_name(pilot) == "LoginScreen", shown(pilot)
    await fill(pilot, "#username", username)
    await fill(pilot, "#password", password)
    await pilot.press("enter")
    await wait_until(
        pilot,
        lambda: (
            screen_name(pilot) != "LoginScreen"
            or not pilot.app.screen.query_one("#log-in").disabled
        ),
        "the password check",
    )


async def enter_code(pilot: Pilot[Any], code: str) -> None:
    """On the second-factor screen: fill in the code and press Enter."""
    assert screen_name(pilot) == "SecondFactorScreen", shown(pilot)
    await fill(pilot, "#code", code)
    await pilot.press("enter")
    await wait_until(
        pilot,
        lambda: (
            screen_name(pilot) != "SecondFactorScreen"
            or not pilot.app.screen.query_one("#verify").disabled
        ),
        "the code check",
    )


@asynccontextmanager
async def admin_console(
    ctx: Context, clock: FixedClock, size: tuple[int, int] = SIZE
) -> AsyncIterator[Pilot[None]]:
    """The console signed in as the administrator ``ADMIN``, on Administration – Users."""
    async with console(ctx, clock, size) as pilot:
        await log_in(pilot, ADMIN, ADMIN_PASSWORD)
        await on_screen(pilot, "UsersScreen")
        yield pilot


async def search_and_open(pilot: Pilot[Any], name: str) -> None:
    """On the users screen: "/" and the name typed key by key, Enter, then Enter on the row."""
    await search(pilot, name)
    table = pilot.app.screen.query_one("#users", UserTable)
    assert table.selected_user is not None and table.selected_user.username == name, shown(pilot)
    await pilot.press("enter")
    await on_screen(pilot, "UserEditScreen")


async def search(pilot: Pilot[Any], text: str) -> None:
    """On the users screen: "/", the text typed key by key, Enter (the table gets the focus)."""
    await pilot.press("slash", *text, "enter")
    await settle(pilot)
    table = pilot.app.screen.query_one("#users", UserTable)
    await wait_until(
        pilot,
        lambda: table.query_spec.search == text and (table.cached_rows or not table.total),
        f"the search for {text!r}",
    )
