"""Make the README's screenshots: docs/screenshots/*.svg, the console as a person sees it.

    python docs/screenshots.py

Each is Textual's own SVG screenshot (``App.save_screenshot``) of the real app, driven headless
with Pilot at 120×40 on a new SQLite database seeded as ``mfa-tui demo --users 40`` seeds it. The
clock and the new TOTP secret are fixed (the RFC 6238 test secret), so running it again changes a
file only when its screen changed.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("TEXTUAL_ANIMATION", "none")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual.pilot import Pilot
from textual.widgets import Input

from mfa_tui.core import otp
from mfa_tui.core.access import Actor
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.config import Config
from mfa_tui.core.context import open_context
from mfa_tui.core.demo import seed_demo
from mfa_tui.core.services.users import UserService
from mfa_tui.ui.app import MfaTuiApp

OUT = Path(__file__).resolve().parent / "screenshots"
SIZE = (120, 40)
NOW = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)


async def settle(pilot: Pilot[None], screen: str) -> None:
    """Until ``screen`` is on top and its workers are done; the text cursor stops blinking."""
    for _ in range(600):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.05)
        if type(pilot.app.screen).__name__ == screen:
            break
    else:
        raise SystemExit(f"{screen} never appeared; the screen is {pilot.app.screen}")
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()


def shoot(pilot: Pilot[None], name: str) -> None:
    pilot.app.save_screenshot(filename=f"{name}.svg", path=str(OUT))
    print(f"docs/screenshots/{name}.svg")


async def main() -> None:
    OUT.mkdir(exist_ok=True)
    otp.new_secret = lambda: b"12345678901234567890"  # stable QR codes in the pictures
    with tempfile.TemporaryDirectory() as folder:
        clock = FixedClock(NOW)
        config = Config(f"sqlite:///{folder}/mfa.db", Path(folder) / "secret.key")
        context = open_context(config, clock)
        seed_demo(context, Actor(name="cli:operator", role="cli"), 40)
        app = MfaTuiApp(context=context, clock=clock)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, "LoginScreen")
            await pilot.press(*"admin")
            shoot(pilot, "login")

            # Signed in as after the password (the demo administrator has no second factor).
            app.start_session(UserService(context).get("admin"), "password")
            await settle(pilot, "UsersScreen")
            shoot(pilot, "users")

            await pilot.press("slash", *"bob", "enter", "enter")
            await settle(pilot, "UserEditScreen")
            app.screen.query_one("#mfa-type").focus()
            await pilot.press("enter", "down", "enter", "tab", "tab", "enter")  # Configure now
            await settle(pilot, "UserEditScreen")
            shoot(pilot, "user-edit-configure-now")
            await pilot.press("escape")

            await settle(pilot, "UsersScreen")
            await pilot.press("s")
            await settle(pilot, "ServerSettingsScreen")
            shoot(pilot, "server-settings")
            await pilot.press("escape")

            await settle(pilot, "UsersScreen")
            await pilot.press("l")
            await settle(pilot, "AuditLogScreen")
            shoot(pilot, "logs")
        context.close()


if __name__ == "__main__":
    asyncio.run(main())
