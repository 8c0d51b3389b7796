"""Hostile text in every form field of the console, driven through Pilot (SQLite only).

Each field gets the same bounded list of hostile strings: a fixed head (escape sequences, Rich
markup, NUL, a right-to-left override, 5,000 characters, blanks, SQL and LIKE metacharacters,
full-width digits) and then strings drawn by hypothesis from ``odd_text``
(tests/core/test_fuzz_text.py). Hypothesis does not drive an async Pilot session well, so it
only *collects* the strings, once, in a plain ``@given`` run with the shared fixed-seed settings
(``derandomize``): the list is the same on every run, and each test loops over it inside one
console (a console takes about a second to start). The Server Settings screen has 36 text
fields: each gets the escape sequences and a rotating share of the rest.

A string arrives as a person's hostile text would: as a bracketed paste (``events.Paste``) into
the focused field, which keeps the first line, as Textual's Input does; the form is submitted
with Enter or Ctrl+S. Keys and pastes are posted as the terminal driver posts them and each
answer is awaited by its own sign (Pilot's idle waits would take minutes for a thousand inputs).
After every input:

- the app is still running and recorded no exception;
- no control or formatting character reaches the screen raw (the screen's text, as the
  compositor sends it to the terminal, holds none of the characters ``printable`` escapes);
- a refused input gets one message in the form's message line, and nothing is saved: the tables
  a form writes (users, credentials, backup codes, settings, caller checks, passes, reset
  requests) are exactly as before; an accepted one saves what the core's rule makes of it.
"""

from __future__ import annotations

import asyncio
import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text
from textual import events
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Input, Select, Static

from mfa_tui.core import validation
from mfa_tui.core.access import Actor
from mfa_tui.core.audit import list_events
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.errors import MfaTuiError
from mfa_tui.core.services.access_pass import AccessPasses
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import UserService, UserView
from mfa_tui.core.settings import SETTING_SPECS, spec_for
from mfa_tui.ui.display import plain
from mfa_tui.ui.screens.server_settings import TEXT_FIELDS, _field_id
from mfa_tui.ui.screens.user_edit import UserEditScreen
from mfa_tui.ui.screens.verify_caller import VerifyCallerScreen
from mfa_tui.ui.widgets.user_table import UserTable
from tests.core.test_fuzz_text import odd_text
from tests.helpers.fuzz import fuzz
from tests.helpers.qr_decode import screen_text
from tests.helpers.yubico_standin import SimulatedYubikey
from tests.ui.conftest import (
    ADMIN,
    ADMIN_PASSWORD,
    PASSWORD,
    add_user,
    admin_console,
    code_now,
    console,
    enroll_totp,
    log_in,
    on_screen,
    screen_name,
    search,
    shown,
    static_text,
)

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

INPUTS = 20  # per field
SETTINGS_INPUTS = 8  # per Server Settings field (36 of them)
UNSAFE = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}  # what core.text.printable escapes
FIXED = (
    "\x1b]0;pwned\x07",
    "\x1b[31mred\x1b[0m",
    "\x9b2J",
    "[bold]x[/bold] [/]",
    "[link=http://evil]click[/link]",
    "a\x00b",
    "\u202eevil",
    "x" * 5000,
    "   ",
    "'; DROP TABLE users; --",
    "%_\\",
    "１２３４５６",
)
NUMBERS = st.sampled_from([" 7 ", "-1", "0", "9" * 30, "٣", "1e3", "0x10", "65536"])
WRONG_CODE = "AAAA-BBBB-CCCC-DDDD"
# The tables a form saves to (lockouts, delivered codes and the audit log record refusals).
SAVED_TABLES = (
    "users",
    "mfa_credentials",
    "backup_codes",
    "server_settings",
    "caller_verifications",
    "access_passes",
    "reset_requests",
)


@cache
def drawn(count: int) -> tuple[str, ...]:
    """``count`` distinct strings from hypothesis, the same on every run (fixed seed)."""
    values: list[str] = []

    @fuzz(count * 4)
    @given(st.one_of(odd_text, NUMBERS))
    def collect(value: str) -> None:
        if value not in values and value not in FIXED and len(values) < count:
            values.append(value)

    collect()
    return tuple(values)


def hostile_inputs() -> tuple[str, ...]:
    return (FIXED + drawn(INPUTS))[:INPUTS]


def settings_inputs(index: int) -> tuple[str, ...]:
    """The escape sequences, then a share of the rest that moves on from field to field."""
    pool = FIXED[3:] + drawn(60)
    start = index * (SETTINGS_INPUTS - 3)
    return FIXED[:3] + tuple(pool[(start + n) % len(pool)] for n in range(SETTINGS_INPUTS - 3))


def saved_state(ctx: Context) -> dict[str, list[Any]]:
    with ctx.db.read() as session:
        return {
            table: [
                tuple(row) for row in session.execute(text(f"SELECT * FROM {table} ORDER BY 1"))
            ]
            for table in SAVED_TABLES
        }


@contextmanager
def unchanged(ctx: Context, what: object) -> Iterator[None]:
    before = saved_state(ctx)
    yield
    changed = [table for table, rows in saved_state(ctx).items() if rows != before[table]]
    assert not changed, f"{what!r} changed {changed}"


@dataclass
class Tally:
    tried: int = 0
    refused: int = 0
    accepted: int = 0


class Figures:
    def __init__(self, title: str) -> None:
        self.title = title
        self.fields: dict[str, Tally] = {}

    def count(self, field: str, *, accepted: bool) -> None:
        tally = self.fields.setdefault(field, Tally())
        tally.tried += 1
        if accepted:
            tally.accepted += 1
        else:
            tally.refused += 1

    def print(self) -> None:
        tallies = self.fields.values()
        total = sum(t.tried for t in tallies)
        refused = sum(t.refused for t in tallies)
        each = "; ".join(
            f"{name} {t.tried} ({t.refused} refused, {t.accepted} accepted)"
            for name, t in self.fields.items()
        )
        print(
            f"\n{self.title}: {len(self.fields)} fields, {total} inputs, {refused} refused with "
            f"one message and nothing saved, {total - refused} accepted, 0 crashes, "
            f"0 raw control characters on screen: {each}"
        )


# Driving the console ---------------------------------------------------------------------------------


async def until(pilot: Pilot[Any], condition: Callable[[], object], what: object) -> None:
    """Let the app run until ``condition`` holds and no worker is running."""
    deadline = time.monotonic() + 15
    while not (condition() and all(worker.is_finished for worker in pilot.app.workers)):
        assert pilot.app._exception is None, (what, pilot.app._exception)
        assert time.monotonic() < deadline, f"timed out after {what!r}:\n{shown(pilot)}"
        await asyncio.sleep(0.002)


async def processed(pilot: Pilot[Any], widget: Widget) -> None:
    """Everything posted so far to the app, and by it to ``widget``, has been handled."""
    done = asyncio.Event()
    pilot.app.call_later(lambda: widget.call_later(done.set))
    await asyncio.wait_for(done.wait(), 15)


async def paste_into(pilot: Pilot[Any], selector: str, value: str) -> str:
    """Empty the field, focus it and paste ``value`` as a terminal's bracketed paste; returns
    what the field holds then."""
    field = pilot.app.screen.query_one(selector, Input)
    field.value = ""
    field.focus()
    pilot.app.post_message(events.Paste(value))
    await processed(pilot, field)
    return field.value


async def send_key(pilot: Pilot[Any], key: str, *, to: Widget | None = None) -> None:
    pilot.app.post_message(events.Key(key, None))
    await processed(pilot, to or pilot.app.screen)


async def submit_from(pilot: Pilot[Any], selector: str) -> None:
    """Enter in the field ``selector``, as a person submits a form."""
    field = pilot.app.screen.query_one(selector, Input)
    field.focus()
    await send_key(pilot, "enter", to=field)


def clear(pilot: Pilot[Any], *selectors: str) -> None:
    """Blank the message lines, so that what they show next is this input's answer."""
    for selector in selectors:
        pilot.app.screen.query_one(selector, Static).update("")


PROGRESS = ("", "Checking…", "Saving…")  # not an answer yet


def said(pilot: Pilot[Any], *selectors: str) -> list[str]:
    """The message lines that hold an answer."""
    return [s for s in selectors if static_text(pilot, s).strip() not in PROGRESS]


async def assert_sane(pilot: Pilot[Any], what: object) -> None:
    """Still running, and nothing on the (freshly laid out) screen a terminal would act on."""
    await pilot.pause(0)  # every widget has handled its messages; layout and screen refreshed
    app = pilot.app
    assert app.is_running and app._exception is None, (what, app._exception)
    raw = {char for line in screen_text(app) for char in line}
    raw = {char for char in raw if unicodedata.category(char) in UNSAFE}
    assert not raw, f"{what!r}: raw {sorted(raw)!r} on screen:\n{shown(pilot)}"


def one_message(pilot: Pilot[Any], selectors: tuple[str, ...], what: object) -> str:
    """The form's one answer, in whichever of its message lines it went to."""
    lines = said(pilot, *selectors)
    assert len(lines) == 1, (what, {s: static_text(pilot, s) for s in selectors})
    message = static_text(pilot, lines[0]).strip()
    assert "\n" not in message and "Traceback" not in message, (what, message)
    return message


def real_code(clock: FixedClock, secret: str) -> str:
    clock.advance(seconds=30)  # a fresh time-step: the last one may be spent
    return code_now(secret, clock)


# Login and invitation (nobody signed in) ---------------------------------------------------------


async def test_login_and_invitation_fields(
    ctx: Context, clock: FixedClock, admin: UserView
) -> None:
    add_user(ctx, "bob", password=None, mfa_type="totp")
    SettingsStore(ctx).set_many(Actor.cli(), {"lockout.attempts": "100"})
    invitation = AccessPasses(ctx).invite(Actor.cli(), "bob")
    assert invitation.code
    figures = Figures("login and invitation fuzz")
    async with console(ctx, clock) as pilot:
        for field, other, other_value in (
            ("#username", "#password", "Wrong-Password-1"),
            ("#password", "#username", ADMIN),
        ):
            for value in hostile_inputs():
                clock.advance(minutes=10)  # past any slowing down of wrong passwords
                with unchanged(ctx, value):
                    clear(pilot, "#login-message")
                    pilot.app.screen.query_one(other, Input).value = other_value
                    await paste_into(pilot, field, value)
                    await submit_from(pilot, "#password")
                    await until(pilot, lambda: said(pilot, "#login-message"), value)
                    assert screen_name(pilot) == "LoginScreen", value
                    await assert_sane(pilot, value)
                    one_message(pilot, ("#login-message",), value)
                figures.count(field, accepted=False)
        clock.advance(minutes=10)
        await log_in(pilot, ADMIN, ADMIN_PASSWORD)  # the real login still works
        await on_screen(pilot, "UsersScreen")
        await pilot.press("x")
        await on_screen(pilot, "LoginScreen")

        await pilot.click("#invitation")
        await on_screen(pilot, "InvitationScreen")
        good = {
            "#invite-username": "bob",
            "#invite-code": invitation.code,
            "#invite-password": "Fresh-Password-77",
        }
        for field in good:
            for value in hostile_inputs():
                MfaService(ctx).unlock(Actor.cli(), "bob")
                with unchanged(ctx, value):
                    clear(pilot, "#invitation-message")
                    for selector, good_value in good.items():
                        pilot.app.screen.query_one(selector, Input).value = good_value
                    again = pilot.app.screen.query_one("#invite-password-again", Input)
                    again.value = good["#invite-password"]
                    if field == "#invite-password":
                        # A strong hostile password must not use up the invitation: the password
                        # rule runs first, then a wrong code refuses it.
                        pilot.app.screen.query_one("#invite-code", Input).value = WRONG_CODE
                    pasted = await paste_into(pilot, field, value)
                    if field == "#invite-password":
                        again.value = pasted
                    await submit_from(pilot, "#invite-password-again")
                    await until(pilot, lambda: said(pilot, "#invitation-message"), value)
                    assert screen_name(pilot) == "InvitationScreen", value
                    await assert_sane(pilot, value)
                    one_message(pilot, ("#invitation-message",), value)
                figures.count(field, accepted=False)
        for selector, good_value in good.items():  # the real invitation still works
            pilot.app.screen.query_one(selector, Input).value = good_value
        pilot.app.screen.query_one("#invite-password-again", Input).value = good["#invite-password"]
        await submit_from(pilot, "#invite-password-again")
        await on_screen(pilot, "EnrollmentScreen")
    figures.print()


# The second factor, step-up and one's own enrollment (Preferences) -------------------------------


async def fuzz_code_field(
    pilot: Pilot[Any],
    ctx: Context,
    field: str,
    messages: tuple[str, ...],
    figures: Figures,
    name: str,
) -> None:
    """Hostile codes into a code field: each refused with one message, nothing saved."""
    screen = screen_name(pilot)
    for value in hostile_inputs():
        MfaService(ctx).unlock(Actor.cli(), "alice")
        with unchanged(ctx, value):
            clear(pilot, *messages)
            await paste_into(pilot, field, value)
            await send_key(pilot, "enter")
            await until(pilot, lambda: said(pilot, *messages), value)
            assert screen_name(pilot) == screen, value
            await assert_sane(pilot, value)
            one_message(pilot, messages, value)
        figures.count(name, accepted=False)


async def test_second_factor_step_up_and_own_enrollment_codes(
    ctx: Context, clock: FixedClock
) -> None:
    add_user(ctx, "alice")
    secret = enroll_totp(ctx, clock, "alice")
    SettingsStore(ctx).set_many(Actor.cli(), {"lockout.attempts": "100"})
    figures = Figures("code fields fuzz")
    async with console(ctx, clock) as pilot:
        await log_in(pilot, "alice", PASSWORD)
        await on_screen(pilot, "SecondFactorScreen")
        await fuzz_code_field(
            pilot, ctx, "#code", ("#second-factor-message",), figures, "second factor"
        )
        await paste_into(pilot, "#code", real_code(clock, secret))
        await pilot.press("enter")
        await on_screen(pilot, "PreferencesScreen")

        clock.advance(minutes=6)  # the login's proof is too old now: step-up asks again
        await pilot.click("#reconfigure")
        await on_screen(pilot, "StepUpScreen")
        await fuzz_code_field(pilot, ctx, "#code", ("#second-factor-message",), figures, "step-up")
        await paste_into(pilot, "#code", real_code(clock, secret))
        await pilot.press("enter")
        await on_screen(pilot, "EnrollmentScreen")
        await pilot.click("#continue")
        await until(pilot, lambda: pilot.app.screen.query_one("#enrollment").display, "Continue")
        await fuzz_code_field(
            pilot,
            ctx,
            "#enrollment-code",
            ("#enrollment-status", "#enrollment-message"),
            figures,
            "own enrollment code",
        )
    figures.print()


# Administration – Users: search, Logs filter -----------------------------------------------------


async def test_search_box_and_logs_filter(ctx: Context, clock: FixedClock, admin: UserView) -> None:
    add_user(ctx, "alice", display_name="Alice Liddell", email="alice@example.com")
    figures = Figures("search fuzz")
    async with admin_console(ctx, clock) as pilot:
        table = pilot.app.screen.query_one("#users", UserTable)
        for value in hostile_inputs():
            with unchanged(ctx, value):
                pasted = await paste_into(pilot, "#search", value)
                await send_key(pilot, "enter")
                await until(pilot, lambda pasted=pasted: table.query_spec.search == pasted, value)
                assert screen_name(pilot) == "UsersScreen"
                await assert_sane(pilot, value)
            figures.count("users search", accepted=True)
        await pilot.press("escape")
        await search(pilot, "alice")  # still finds what it should
        await pilot.press("escape")
        await pilot.press("l")
        await on_screen(pilot, "AuditLogScreen")
        for value in hostile_inputs():
            with unchanged(ctx, value):
                pasted = (await paste_into(pilot, "#audit-filter", value)).strip()
                # Filtered after a pause in typing, as shown in the status line.
                ending = (
                    str(plain(f" matching '{pasted}' · v: check integrity"))
                    if pasted
                    else " newest events · v: check integrity"
                )
                await send_key(pilot, "enter")
                await until(
                    pilot,
                    lambda ending=ending: static_text(pilot, "#audit-status").endswith(ending),
                    value,
                )
                await assert_sane(pilot, value)
            figures.count("logs filter", accepted=True)
    figures.print()


# User edit: General ------------------------------------------------------------------------------

GENERAL_RULES: dict[str, Callable[[str], str | None]] = {
    "#username": validation.username,
    "#display-name": validation.display_name,
    "#email": validation.email,
    "#phone": validation.phone,
}


def stored_general(view: UserView) -> dict[str, str]:
    return {
        "#username": view.username,
        "#display-name": view.display_name or "",
        "#email": view.email or "",
        "#phone": view.phone or "",
        "#password": "",
    }


async def open_editor(pilot: Pilot[Any], ctx: Context, user_id: int) -> None:
    supported = SettingsStore(ctx).load().supported_types
    editor = UserEditScreen(UserService(ctx).get_by_id(user_id), supported)
    pilot.app.push_screen(editor)
    await until(pilot, lambda: pilot.app.screen is editor and editor.is_mounted, "User edit")


async def test_user_edit_general_fields(ctx: Context, clock: FixedClock, admin: UserView) -> None:
    add_user(ctx, "alice", display_name="Alice", email="alice@example.com", phone="+14155550123")
    enroll_totp(ctx, clock, "alice")
    alice_id = UserService(ctx).get("alice").id
    figures = Figures("User edit fuzz")
    async with admin_console(ctx, clock) as pilot:
        await open_editor(pilot, ctx, alice_id)
        for field in (*GENERAL_RULES, "#password"):
            for value in hostile_inputs():
                if screen_name(pilot) != "UserEditScreen":
                    await open_editor(pilot, ctx, alice_id)
                before = saved_state(ctx)
                clear(pilot, "#edit-message")
                pasted = await paste_into(pilot, field, value)
                rule = GENERAL_RULES.get(field)
                if rule is not None:  # checked as it is typed
                    try:
                        rule(pasted)
                        wrong = False
                    except MfaTuiError:
                        wrong = True
                    error_line = f"{field}-error"
                    await until(
                        pilot,
                        lambda line=error_line, wrong=wrong: (
                            pilot.app.screen.query_one(line).has_class("shown") == wrong
                        ),
                        value,
                    )
                    if wrong:
                        one_message(pilot, (error_line,), value)
                await send_key(pilot, "ctrl+s")
                await until(
                    pilot,
                    lambda: screen_name(pilot) != "UserEditScreen" or said(pilot, "#edit-message"),
                    value,
                )
                await assert_sane(pilot, value)
                view = UserService(ctx).get_by_id(alice_id)
                assert (view.mfa_type, view.mfa_status) == ("totp", "configured"), value
                if screen_name(pilot) == "UserEditScreen":
                    one_message(pilot, ("#edit-message",), value)
                    assert saved_state(ctx) == before, value  # nothing half-saved
                    assert pilot.app.screen.query_one("#mfa-type", Select).value == "totp"
                    # Typed back as it was, so that the next input is refused for itself only.
                    pilot.app.screen.query_one(field, Input).value = stored_general(view)[field]
                    figures.count(field, accepted=False)
                else:
                    if rule is not None:
                        assert stored_general(view)[field] == (rule(pasted) or ""), value
                    figures.count(field, accepted=True)
    figures.print()


# User edit: configure now (TOTP code, Yubikey fields) ----------------------------------------------

# A wrong code is said next to the code field; a refused input (a malformed AES key), at the bottom.
CONFIGURE_NOW_MESSAGES = ("#enrollment-status", "#edit-message")


async def test_configure_now_code_and_yubikey_fields(
    ctx: Context, clock: FixedClock, admin: UserView
) -> None:
    SettingsStore(ctx).set_many(
        Actor.cli(), {"mfa.supported": "totp,yubikey", "yubikey.mode": "local"}
    )
    add_user(ctx, "bob")
    bob_id = UserService(ctx).get("bob").id
    key = SimulatedYubikey()
    figures = Figures("configure now fuzz")
    async with admin_console(ctx, clock, size=(120, 60)) as pilot:
        await open_editor(pilot, ctx, bob_id)
        pilot.app.screen.query_one("#mfa-type", Select).value = "totp"
        await pilot.pause()
        await pilot.click("#configure-now")
        await until(pilot, lambda: pilot.app.screen.query_one("#enrollment").display, "QR")
        for value in hostile_inputs():
            with unchanged(ctx, value):
                clear(pilot, *CONFIGURE_NOW_MESSAGES)
                await paste_into(pilot, "#enrollment-code", value)
                await send_key(pilot, "enter")
                await until(pilot, lambda: said(pilot, *CONFIGURE_NOW_MESSAGES), value)
                await assert_sane(pilot, value)
                one_message(pilot, CONFIGURE_NOW_MESSAGES, value)
            figures.count("TOTP code", accepted=False)
        uri = pilot.app.screen.query_one("#enrollment").start.provisioning_uri
        secret = parse_qs(urlparse(uri).query)["secret"][0]
        await paste_into(pilot, "#enrollment-code", pyotp.TOTP(secret).at(clock.now()))
        await send_key(pilot, "enter")
        await until(pilot, lambda: "Code verified" in static_text(pilot, "#enrollment-status"), 1)

        # Yubikey (local validation): the AES key and private ID typed next to the first touch.
        pilot.app.screen.query_one("#mfa-type", Select).value = "yubikey"
        await pilot.pause()
        await pilot.click("#configure-now")
        await until(
            pilot, lambda: bool(pilot.app.screen.query("#enrollment-field-aes_key")), "Yubikey"
        )
        good = {
            "#enrollment-field-aes_key": key.aes_key_hex,
            "#enrollment-field-private_id": key.private_id_hex,
            "#enrollment-code": key.touch(),
        }
        for field in good:
            for value in hostile_inputs():
                with unchanged(ctx, value):
                    clear(pilot, *CONFIGURE_NOW_MESSAGES)
                    for selector, good_value in good.items():
                        pilot.app.screen.query_one(selector, Input).value = good_value
                    await paste_into(pilot, field, value)
                    await submit_from(pilot, "#enrollment-code")
                    await until(pilot, lambda: said(pilot, *CONFIGURE_NOW_MESSAGES), value)
                    await assert_sane(pilot, value)
                    one_message(pilot, CONFIGURE_NOW_MESSAGES, value)
                    assert not pilot.app.screen.query_one("#enrollment").verified
                figures.count("Yubikey " + field.removeprefix("#enrollment-"), accepted=False)
        for selector, good_value in good.items():
            pilot.app.screen.query_one(selector, Input).value = good_value
        pilot.app.screen.query_one("#enrollment-code", Input).value = key.touch()
        await submit_from(pilot, "#enrollment-code")
        await until(pilot, lambda: "Code verified" in static_text(pilot, "#enrollment-status"), 2)
    figures.print()


# Verify the caller, and the override reason --------------------------------------------------------


async def test_verify_caller_code_and_override_reason(
    ctx: Context, clock: FixedClock, admin: UserView
) -> None:
    add_user(ctx, "alice")
    secret = enroll_totp(ctx, clock, "alice")
    add_user(ctx, "bob")
    enroll_totp(ctx, clock, "bob")
    SettingsStore(ctx).set_many(Actor.cli(), {"lockout.attempts": "100"})
    figures = Figures("helpdesk fields fuzz")
    async with admin_console(ctx, clock) as pilot:
        pilot.app.push_screen(VerifyCallerScreen(UserService(ctx).get("alice")))
        await on_screen(pilot, "VerifyCallerScreen")
        for value in hostile_inputs():
            MfaService(ctx).unlock(Actor.cli(), "alice")
            with unchanged(ctx, value):
                clear(pilot, "#caller-message")
                await paste_into(pilot, "#caller-code", value)
                await send_key(pilot, "enter")
                await until(pilot, lambda: said(pilot, "#caller-message"), value)
                await assert_sane(pilot, value)
                one_message(pilot, ("#caller-message",), value)
                assert not pilot.app.screen.verified
            figures.count("verify-caller code", accepted=False)
        await paste_into(pilot, "#caller-code", real_code(clock, secret))
        await send_key(pilot, "enter")
        await until(pilot, lambda: pilot.app.screen.verified, "the real code")
        await pilot.press("escape")
        await on_screen(pilot, "UsersScreen")

        await search(pilot, "bob")
        for value in hostile_inputs():
            await send_key(pilot, "t")  # an access pass for bob, whose caller is not verified
            await until(pilot, lambda: screen_name(pilot) == "OverrideReasonScreen", value)
            before = saved_state(ctx)
            pasted = await paste_into(pilot, "#reason", value)
            await send_key(pilot, "enter")
            await until(
                pilot,
                lambda: (
                    screen_name(pilot) == "ShownOnceScreen"
                    or (
                        screen_name(pilot) == "OverrideReasonScreen"
                        and said(pilot, "#reason-message")
                    )
                ),
                value,
            )
            await assert_sane(pilot, value)
            if screen_name(pilot) == "OverrideReasonScreen":
                one_message(pilot, ("#reason-message",), value)
                assert saved_state(ctx) == before, value
                figures.count("override reason", accepted=False)
            else:
                with ctx.db.read() as session:
                    event = next(e for e in list_events(session) if e.target == "bob")
                assert event.details.get("reason") == pasted.strip(), value
                figures.count("override reason", accepted=True)
            await send_key(pilot, "escape")
            await until(pilot, lambda: screen_name(pilot) == "UsersScreen", value)
    figures.print()


# Server Settings -----------------------------------------------------------------------------------

SETTINGS_FIELDS = {
    **{f"#{widget}": key for key, widget in TEXT_FIELDS.items()},
    **{
        f"#{_field_id(spec.key)}": spec.key
        for spec in SETTING_SPECS
        if spec.kind in ("str", "int")
        and spec.key.split(".")[0] in ("smtp", "sms", "yubikey", "radius", "duo")
    },
}


async def test_server_settings_fields(ctx: Context, clock: FixedClock, admin: UserView) -> None:
    figures = Figures("Server Settings fuzz")
    async with admin_console(ctx, clock) as pilot:
        await pilot.press("s")
        await on_screen(pilot, "ServerSettingsScreen")
        for index, (field, key) in enumerate(SETTINGS_FIELDS.items()):
            spec = spec_for(key)
            original = pilot.app.screen.query_one(field, Input).value
            for value in settings_inputs(index):
                before = saved_state(ctx)
                clear(pilot, "#settings-message")
                pasted = await paste_into(pilot, field, value)
                await send_key(pilot, "ctrl+s")
                await until(pilot, lambda: said(pilot, "#settings-message"), value)
                assert screen_name(pilot) == "ServerSettingsScreen", value
                await assert_sane(pilot, value)
                message = one_message(pilot, ("#settings-message",), value)
                try:
                    expected = spec.parse(pasted) if pasted or not spec.secret else None
                except MfaTuiError:
                    assert message != "Settings saved.", (key, value)
                    assert saved_state(ctx) == before, (key, value)  # nothing half-saved
                    figures.count(key, accepted=False)
                else:
                    assert message == "Settings saved.", (key, value, message)
                    if expected is not None:
                        assert SettingsStore(ctx).load()[key] == expected, (key, value)
                    figures.count(key, accepted=True)
                pilot.app.screen.query_one(field, Input).value = original
    figures.print()
