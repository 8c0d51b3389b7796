"""The SMS gateway, the RADIUS server and Duo down (nothing listens) or silent (they take the
request and never answer), in the console: the SMS code sent at configure now and at login, the
RADIUS passcode checked at login and at configure now's Validate, a Duo push at login.

Each time the screen keeps taking keys while the request waits in its worker, then one line says
what happened; nothing is left half-done (no enrollment or code whose message never left,
no failed attempt counted against the user), and the same step works once the gateway is back.
Timeouts are the product's own settings (``sms.timeout``, ``radius.timeout``, ``duo.timeout``)
set low; Duo's extra minute for a push (``PUSH_WAIT_SECONDS``) is shortened the same way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Input
from textual.worker import WorkerState

from mfa_tui.core.access import Actor
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.factors import duo as duo_factor
from mfa_tui.core.models import MfaStatus
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import UserView
from tests.core.test_factor_sms import live_codes
from tests.helpers import freeradius
from tests.helpers.duo_standin import DuoStandIn, DuoUser, phone, running_duo
from tests.helpers.freeradius import RadiusServer
from tests.helpers.ports import HOST
from tests.helpers.twilio_standin import TwilioStandin, twilio_standin
from tests.ui.conftest import (
    PASSWORD,
    add_user,
    admin_console,
    audit_events,
    click,
    console,
    credentials,
    enter_code,
    fill,
    lockout_row,
    on_screen,
    screen_name,
    search_and_open,
    shown,
    static_text,
    user_row,
    wait_until,
)
from tests.ui.test_factor_duo_ui import IPHONE, enroll_duo
from tests.ui.test_factor_email_sms_ui import NUMBER, choose_type, configure_now, enroll
from tests.ui.test_factor_radius_ui import enroll_radius, use_radius

pytestmark = [
    pytest.mark.slow,  # FreeRADIUS runs as a child process
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),  # the engine is not the point
    pytest.mark.filterwarnings("ignore:ssl.PROTOCOL_TLS is deprecated:DeprecationWarning"),
]
TIMEOUT_SECONDS = 5  # long enough to type into the screen, under load, while the request waits
SEEN: list[str] = []  # what the screens said about the faults in the running test


@pytest.fixture(autouse=True)
def _seen() -> Iterator[None]:
    SEEN.clear()
    yield
    SEEN.clear()


@pytest.fixture
def silent_udp() -> Iterator[int]:
    yield from freeradius.silent_udp_port()


@pytest.fixture(scope="module")
def radius() -> Iterator[RadiusServer]:
    yield from freeradius.start_freeradius()


@pytest.fixture
def gateway() -> Iterator[TwilioStandin]:
    with twilio_standin() as standin:
        yield standin


def use_sms(ctx: Context, gateway: TwilioStandin, base_url: str | None = None) -> None:
    settings = {**gateway.settings(), "sms.timeout": str(TIMEOUT_SECONDS)}
    if base_url is not None:
        settings["sms.base_url"] = base_url
    SettingsStore(ctx).set_many(Actor.cli(), {"mfa.supported": "totp,sms", **settings})


# Driving the screen while a worker is meant to hang -------------------------------------------------


async def poll(pilot: Pilot[Any], condition: Callable[[], object], what: str) -> None:
    """``wait_until`` without waiting for the workers (one of them is the hanging request)."""
    deadline = time.monotonic() + 15
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{shown(pilot)}"
        await pilot.pause(0.02)


def waiting(pilot: Pilot[Any], group: str) -> bool:
    """A worker of ``group`` has not finished yet."""
    return any(
        worker.group == group and worker.state in (WorkerState.PENDING, WorkerState.RUNNING)
        for worker in pilot.app.workers
    )


async def type_while_waiting(pilot: Pilot[Any], group: str, selector: str, text: str) -> None:
    """Keys typed into a field take effect while the request still waits in its worker."""
    assert waiting(pilot, group), f"the request ({group}) ended too soon"
    field = pilot.app.screen.query_one(selector, Input)
    field.focus()
    await pilot.press("end", *text)
    assert field.value.endswith(text), field.value
    assert waiting(pilot, group), f"the UI waited for the request ({group})"


async def start_login(pilot: Pilot[Any], username: str) -> None:
    """Username, password, Enter — up to the second-factor screen, whose challenge may hang."""
    assert screen_name(pilot) == "LoginScreen", shown(pilot)
    await fill(pilot, "#username", username)
    await fill(pilot, "#password", PASSWORD)
    await pilot.press("enter")
    await poll(
        pilot,
        lambda: screen_name(pilot) == "SecondFactorScreen" and pilot.app.screen.is_mounted,
        "the second-factor screen",
    )


async def said(pilot: Pilot[Any], selector: str, expected: str) -> str:
    """Wait for the message starting with ``expected`` in ``selector``, check it is one line with
    no traceback anywhere, and keep it for the figure line."""
    await wait_until(
        pilot,
        lambda: static_text(pilot, selector).startswith(expected),
        f"{expected!r} in {selector}",
        timeout=TIMEOUT_SECONDS + 20,
    )
    message = static_text(pilot, selector)
    assert "\n" not in message.strip() and "Traceback" not in shown(pilot), shown(pilot)
    SEEN.append(message)
    return message


def figure(what: str, faults: str, outcome: str) -> None:
    """The line ``pytest -s`` shows for the README, then each sentence the screen said."""
    print(f"\n{what}: {faults}; {len(SEEN)} one-line messages; {outcome}")
    for message in SEEN:
        print(f"  said: {message}")


def not_counted(ctx: Context, name: str) -> None:
    row = lockout_row(ctx, name)
    assert row is None or (row.failed_attempts, row.locked_at) == (0, None), row


# SMS --------------------------------------------------------------------------------------------


async def test_sms_gateway_silent_then_down_at_configure_now(
    ctx: Context,
    clock: FixedClock,
    admin: UserView,
    gateway: TwilioStandin,
    silent_tcp: int,
    refused_port: int,
) -> None:
    add_user(ctx, "carol", phone=NUMBER)
    use_sms(ctx, gateway)
    down = refused_port
    faults = {
        f"http://{HOST}:{silent_tcp}": (
            f"The SMS gateway at {HOST}:{silent_tcp} did not answer within "
            f"{TIMEOUT_SECONDS} s; try again later."
        ),
        f"http://{HOST}:{down}": f"Could not reach the SMS gateway at {HOST}:{down} (",
    }
    async with admin_console(ctx, clock) as pilot:
        await search_and_open(pilot, "carol")
        await choose_type(pilot, "sms")
        for url, expected in faults.items():
            use_sms(ctx, gateway, url)
            # pilot.click, not the ``click`` helper: that one waits for the workers to finish.
            assert await pilot.click(pilot.app.screen.query_one("#configure-now", Button))
            if "did not answer" in expected:
                await type_while_waiting(pilot, "enrollment", "#display-name", "Carol")
            await said(pilot, "#edit-message", expected)
            assert credentials(ctx, "carol") == []  # the enrollment whose code never left is gone
            assert live_codes(ctx) == []
            assert not pilot.app.screen.query_one("#configure-now", Button).disabled

        use_sms(ctx, gateway)  # the gateway is back: the same button works
        await configure_now(pilot, "sms", lambda: gateway.last_code_to(NUMBER))
    carol = user_row(ctx, "carol")
    assert carol is not None
    assert (carol.mfa_type, carol.mfa_status) == ("sms", MfaStatus.CONFIGURED)
    assert carol.display_name == "Carol"  # typed during the wait, saved by Update
    assert credentials(ctx, "carol") == [("sms", "active")]
    figure(
        "SMS gateway at configure now",
        f"{len(faults)} faults (silent {TIMEOUT_SECONDS} s, connection refused)",
        "5 keys typed while waiting, 0 enrollments or codes left, 1 retry succeeded",
    )


async def test_sms_gateway_silent_then_down_at_login(
    ctx: Context, clock: FixedClock, gateway: TwilioStandin, silent_tcp: int, refused_port: int
) -> None:
    add_user(ctx, "carol", phone=NUMBER)
    use_sms(ctx, gateway)
    enroll(ctx, "carol", "sms", lambda: gateway.last_code_to(NUMBER))
    down = refused_port
    faults = {
        f"http://{HOST}:{silent_tcp}": f"The SMS gateway at {HOST}:{silent_tcp} did not answer",
        f"http://{HOST}:{down}": f"Could not reach the SMS gateway at {HOST}:{down} (",
    }
    async with console(ctx, clock) as pilot:
        for url, expected in faults.items():
            clock.advance(seconds=61)  # past the minute in which no second code is sent
            use_sms(ctx, gateway, url)
            await start_login(pilot, "carol")
            if "did not answer" in expected:
                await type_while_waiting(pilot, "challenge", "#code", "123")
            await said(pilot, "#second-factor-message", expected)
            assert not pilot.app.screen.query_one("#verify", Button).disabled
            assert live_codes(ctx) == []  # no code is waiting that nobody received
            not_counted(ctx, "carol")
            await pilot.press("escape")  # back to the login screen, to log in again
            await on_screen(pilot, "LoginScreen")

        clock.advance(seconds=61)
        use_sms(ctx, gateway)
        await start_login(pilot, "carol")
        await wait_until(
            pilot,
            lambda: "code was sent to +1…0123" in static_text(pilot, "#second-factor-message"),
            "the code to be sent",
        )
        await enter_code(pilot, gateway.last_code_to(NUMBER))
        await on_screen(pilot, "PreferencesScreen")
    not_counted(ctx, "carol")
    figure(
        "SMS gateway at login",
        f"{len(faults)} faults (silent {TIMEOUT_SECONDS} s, connection refused)",
        "3 keys typed while waiting, 0 codes left, 0 attempts counted, 1 retry succeeded",
    )


# RADIUS -----------------------------------------------------------------------------------------


async def test_radius_silent_then_down_at_login(
    ctx: Context,
    clock: FixedClock,
    radius: RadiusServer,
    silent_udp: int,
    refused_udp_port: int,
) -> None:
    add_user(ctx, "alice")
    use_radius(ctx, radius)
    enroll_radius(ctx, "alice", "alice-pass")
    down = refused_udp_port
    faults = {
        silent_udp: (
            f"The RADIUS server {HOST}:{silent_udp} did not answer within {TIMEOUT_SECONDS} s "
        ),
        down: f"The RADIUS server {HOST}:{down} is unreachable (",
    }
    async with console(ctx, clock) as pilot:
        await start_login(pilot, "alice")
        await on_screen(pilot, "SecondFactorScreen")
        for port, expected in faults.items():
            use_radius(
                ctx, radius, **{"radius.port": str(port), "radius.timeout": str(TIMEOUT_SECONDS)}
            )
            await fill(pilot, "#code", "alice-pass")
            await pilot.press("enter")
            if "did not answer" in expected:
                assert pilot.app.screen.query_one("#verify", Button).disabled  # checking
                await type_while_waiting(pilot, "default", "#code", "typed")
            await said(pilot, "#second-factor-message", expected)
            assert not pilot.app.screen.query_one("#verify", Button).disabled
            not_counted(ctx, "alice")

        use_radius(ctx, radius)  # the server is back: the same prompt works
        await enter_code(pilot, "alice-pass")
        await on_screen(pilot, "PreferencesScreen")
    not_counted(ctx, "alice")
    unavailable = audit_events(ctx, "verify.unavailable")
    assert len(unavailable) == len(faults)  # audited as an outage, not as a wrong code
    assert audit_events(ctx, "verify.refused") == []
    figure(
        "RADIUS at login",
        f"{len(faults)} faults (silent {TIMEOUT_SECONDS} s, port unreachable)",
        "5 keys typed while waiting, 0 attempts counted (2 audited as unavailable), "
        "1 retry succeeded",
    )


async def test_radius_silent_then_down_at_validate_in_configure_now(
    ctx: Context,
    clock: FixedClock,
    admin: UserView,
    radius: RadiusServer,
    silent_udp: int,
    refused_udp_port: int,
) -> None:
    add_user(ctx, "alice")
    use_radius(ctx, radius)
    down = refused_udp_port
    faults = {
        silent_udp: (
            f"The RADIUS server {HOST}:{silent_udp} did not answer within {TIMEOUT_SECONDS} s "
        ),
        down: f"The RADIUS server {HOST}:{down} is unreachable (",
    }
    async with admin_console(ctx, clock) as pilot:
        await search_and_open(pilot, "alice")
        await choose_type(pilot, "radius")
        await click(pilot, "#configure-now")
        await wait_until(
            pilot,
            lambda: (
                "checked by the RADIUS server" in static_text(pilot, "#enrollment-instructions")
            ),
            "the RADIUS instructions",
        )
        for port, expected in faults.items():
            use_radius(
                ctx, radius, **{"radius.port": str(port), "radius.timeout": str(TIMEOUT_SECONDS)}
            )
            await fill(pilot, "#enrollment-code", "alice-pass")
            assert await pilot.click(pilot.app.screen.query_one("#validate", Button))
            if "did not answer" in expected:
                await type_while_waiting(pilot, "enrollment", "#display-name", "Alice Liddell")
            await said(pilot, "#edit-message", expected)
            # The enrollment waits for a code the server has checked; nothing else changed.
            assert credentials(ctx, "alice") == [("radius", "verifying")]
            alice = user_row(ctx, "alice")
            assert alice is not None and (alice.mfa_type, alice.mfa_status) == ("none", "none")
            assert audit_events(ctx, "mfa.enrollment.code_verified") == []
            assert not pilot.app.screen.query_one("#validate", Button).disabled

        use_radius(ctx, radius)  # the server is back: Validate again, then Update
        await fill(pilot, "#enrollment-code", "alice-pass")
        await click(pilot, "#validate")
        await wait_until(
            pilot,
            lambda: "Code verified" in static_text(pilot, "#enrollment-status"),
            "the passcode to be verified by FreeRADIUS",
        )
        await click(pilot, "#update")
        await on_screen(pilot, "UsersScreen")
    alice = user_row(ctx, "alice")
    assert alice is not None
    assert (alice.mfa_type, alice.mfa_status) == ("radius", MfaStatus.CONFIGURED)
    assert alice.display_name == "Alice Liddell"  # typed during the wait, saved by Update
    assert credentials(ctx, "alice") == [("radius", "active")]
    figure(
        "RADIUS at Validate in configure now",
        f"{len(faults)} faults (silent {TIMEOUT_SECONDS} s, port unreachable)",
        "13 keys typed while waiting, the enrollment still verifying and the user unchanged, "
        "1 retry succeeded",
    )


# Duo --------------------------------------------------------------------------------------------


@pytest.fixture
def duo(tmp_path: Path) -> Iterator[DuoStandIn]:
    with running_duo(tmp_path) as server:
        server.users["alice"] = DuoUser(devices=[phone(IPHONE, "iOS (XXX-XXX-1111)")])
        yield server


@pytest.fixture
def pushes_answered(duo: DuoStandIn) -> Iterator[threading.Event]:
    """While cleared, Duo takes a push request and keeps it, as if its answer never came."""
    answered = threading.Event()
    answered.set()
    answer = duo.answer

    def hold_pushes(method: str, path: str, params: dict[str, str]) -> tuple[int, dict]:
        if path == "/auth/v2/auth" and params.get("factor") == "push":
            answered.wait(30)
        return answer(method, path, params)

    duo.answer = hold_pushes  # type: ignore[method-assign]
    yield answered
    answered.set()


async def test_duo_down_then_silent_at_a_login_push(
    ctx: Context,
    clock: FixedClock,
    duo: DuoStandIn,
    pushes_answered: threading.Event,
    monkeypatch: pytest.MonkeyPatch,
    refused_port: int,
) -> None:
    # A push waits for Duo's timeout plus the minute Duo gives the person: that minute shortened.
    monkeypatch.setattr(duo_factor, "PUSH_WAIT_SECONDS", TIMEOUT_SECONDS - 1)
    settings = SettingsStore(ctx)
    settings.set_many(
        Actor.cli(), {**duo.settings(), "mfa.supported": "totp,duo", "duo.timeout": "1"}
    )
    add_user(ctx, "alice")
    enroll_duo(ctx)
    down = refused_port
    refused = f"Duo at localhost:{down} cannot be reached ("
    async with console(ctx, clock) as pilot:
        settings.set_many(Actor.cli(), {"duo.api_host": f"localhost:{down}"})
        await start_login(pilot, "alice")
        await said(pilot, "#second-factor-message", refused)  # the device list, as it opens
        await fill(pilot, "#code", "push")
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: audit_events(ctx, "verify.unavailable"), "the push to be refused"
        )
        await said(pilot, "#second-factor-message", refused)
        not_counted(ctx, "alice")

        # Duo answers again, but holds the push: the person's phone never says anything.
        settings.set_many(Actor.cli(), {"duo.api_host": duo.host})
        pushes_answered.clear()
        await fill(pilot, "#code", "push")
        await pilot.press("enter")
        await poll(pilot, lambda: len(duo.calls("/auth/v2/auth")) == 2, "the push to reach Duo")
        await type_while_waiting(pilot, "default", "#code", "typed")
        await said(
            pilot,
            "#second-factor-message",
            f"Duo at {duo.host} did not answer within {TIMEOUT_SECONDS} s; try again later.",
        )
        not_counted(ctx, "alice")

        pushes_answered.set()  # Duo answers pushes again: the same prompt works
        await enter_code(pilot, "push")
        await on_screen(pilot, "PreferencesScreen")
    not_counted(ctx, "alice")
    assert len(audit_events(ctx, "verify.unavailable")) == 2
    assert audit_events(ctx, "verify.refused") == []
    figure(
        "Duo at a login push",
        f"2 faults (connection refused, a push held past {TIMEOUT_SECONDS} s)",
        "5 keys typed while waiting, 0 attempts counted (2 audited as unavailable), "
        "1 retry succeeded",
    )
