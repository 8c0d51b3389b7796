"""Preferences – Multi-factor and backup codes, driven through real screens (SQLite and PostgreSQL).

Changing one's own factor needs step-up: a code proven within the last five minutes. After that
the screen asks for the code first (StepUpScreen), carries on once it is given, and changes
nothing when it is cancelled. Backup codes work once each at login, a new set replaces the old
one, and the screen warns when few are left.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlmodel import select
from textual.pilot import Pilot
from textual.widgets import Select

from mfa_tui.core import backup_codes
from mfa_tui.core.access import Actor
from mfa_tui.core.audit import list_events
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.config import Config
from mfa_tui.core.context import Context
from mfa_tui.core.models import BackupCode, MfaCredential, User
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.ui.app import MfaTuiApp
from mfa_tui.ui.screens.backup_codes import BackupCodesScreen
from mfa_tui.ui.screens.enrollment import EnrollmentScreen
from mfa_tui.ui.screens.preferences import PreferencesScreen
from mfa_tui.ui.screens.second_factor import SecondFactorScreen
from mfa_tui.ui.screens.step_up import StepUpScreen
from tests.ui.test_enrollment_flow import (
    SMALL,
    active_credential_id,
    add_user,
    cheap_password_hashing,  # noqa: F401 - an autouse fixture, active here too
    configure_totp,
    enter_code,
    log_in,
    log_out,
    on_screen,
    scan_qr,
    shown_backup_codes,
    text_of,
    until,
    unused_backup_codes,
)

AMBIGUOUS = set("0O1IL")


def mfa_state(ctx: Context, name: str) -> tuple[Any, ...]:
    """Everything a change of one's own MFA could touch: user row, credentials, backup codes."""
    with ctx.db.read() as session:
        user = session.exec(select(User).where(User.username_key == name)).one()
        credentials = session.exec(
            select(MfaCredential.id, MfaCredential.state).where(MfaCredential.user_id == user.id)
        ).all()
        codes = session.exec(
            select(BackupCode.code_hash, BackupCode.used_at).where(BackupCode.user_id == user.id)
        ).all()
        return (
            user.mfa_type,
            user.mfa_status,
            user.version,
            sorted(tuple(row) for row in credentials),
            sorted((hash_, str(used)) for hash_, used in codes),
        )


def audit_actions(ctx: Context, name: str) -> list[str]:
    with ctx.db.read() as session:
        return [event.action for event in list_events(session, text=name)]


async def press_button(pilot: Pilot[Any], selector: str) -> None:
    """Click a button of the current screen, scrolled into view first as a person would."""
    pilot.app.screen.query_one(selector).scroll_visible(animate=False)
    await pilot.pause()
    await pilot.click(selector)


# Point 5: step-up in Preferences --------------------------------------------------------------------


async def test_preferences_ask_for_the_code_first_and_cancelling_changes_nothing(
    ctx: Context, clock: FixedClock
) -> None:
    add_user(ctx, "alice")
    old = configure_totp(ctx, clock, "alice")
    MfaService(ctx).generate_backup_codes(Actor.cli(), "alice")
    app = MfaTuiApp(context=ctx, clock=clock)
    async with app.run_test(size=SMALL) as pilot:
        await log_in(pilot, "alice")
        await on_screen(pilot, SecondFactorScreen)
        await enter_code(pilot, old.at(clock.now()))
        preferences = await on_screen(pilot, PreferencesScreen)
        clock.advance(minutes=5, seconds=1)  # the login's proof is now too old
        old_id = active_credential_id(ctx, "alice")
        before = mfa_state(ctx, "alice")
        events_before = audit_actions(ctx, "alice")

        # Each change asks for the code first; Escape cancels it and nothing changes.
        preferences.query_one("#new-type", Select).value = "totp"
        for button in ("#generate-backup-codes", "#reconfigure", "#change-type"):
            await press_button(pilot, button)
            step_up = await on_screen(pilot, StepUpScreen)
            assert "Confirm it is you" in step_up.title
            assert not step_up.query_one("#lost-device").display
            await pilot.press("escape")
            await on_screen(pilot, PreferencesScreen)
            assert mfa_state(ctx, "alice") == before, button
        assert audit_actions(ctx, "alice") == events_before

        # With the code, Reconfigure goes on to enrollment; the old factor works until the end.
        await press_button(pilot, "#reconfigure")
        await on_screen(pilot, StepUpScreen)
        await enter_code(pilot, old.at(clock.now()))
        await on_screen(pilot, EnrollmentScreen)
        await pilot.click("#continue")
        new = await scan_qr(pilot)
        assert active_credential_id(ctx, "alice") == old_id
        clock.advance(seconds=30)
        await enter_code(pilot, new.at(clock.now()))
        await on_screen(pilot, PreferencesScreen)
        await until(
            pilot, lambda: "set up" in text_of(preferences, "#preferences-message"), "the message"
        )
        assert active_credential_id(ctx, "alice") != old_id
        assert unused_backup_codes(ctx, "alice") == 10  # the codes were kept: no new set shown

        # The proof is fresh (under five minutes): new backup codes come without asking again.
        clock.advance(minutes=4)
        await press_button(pilot, "#generate-backup-codes")
        await on_screen(pilot, BackupCodesScreen)
    clock.advance(seconds=30)
    assert not MfaService(ctx).verify("alice", old.at(clock.now())).accepted
    assert MfaService(ctx).verify("alice", new.at(clock.now())).accepted


# Point 3: backup codes ------------------------------------------------------------------------------


async def test_backup_codes_work_once_warn_when_few_and_a_new_set_replaces_the_old(
    ctx: Context, clock: FixedClock, config: Config
) -> None:
    add_user(ctx, "alice")
    configure_totp(ctx, clock, "alice")
    codes = MfaService(ctx).generate_backup_codes(Actor.cli(), "alice")
    for code in codes[2:8]:  # six used elsewhere: four left before this test logs in
        assert MfaService(ctx).verify("alice", code).accepted
    app = MfaTuiApp(context=ctx, clock=clock)
    async with app.run_test(size=SMALL) as pilot:
        await log_in(pilot, "alice")
        prompt = await on_screen(pilot, SecondFactorScreen)
        await pilot.click("#use-backup-code")
        await enter_code(pilot, codes[0].lower().replace("-", " "))  # as read off paper
        preferences = await on_screen(pilot, PreferencesScreen)
        assert "Backup codes left: 3" in text_of(preferences, "#own-mfa")
        assert "Only 3 backup codes left" in text_of(preferences, "#backup-warning")
        await log_out(pilot)

        await log_in(pilot, "alice")
        prompt = await on_screen(pilot, SecondFactorScreen)
        await pilot.click("#use-backup-code")
        await enter_code(pilot, codes[0])
        await until(
            pilot,
            lambda: "not accepted" in text_of(prompt, "#second-factor-message"),
            "the refusal of a used code",
        )
        assert unused_backup_codes(ctx, "alice") == 3
        await enter_code(pilot, codes[1])
        preferences = await on_screen(pilot, PreferencesScreen)
        assert "Backup codes left: 2" in text_of(preferences, "#own-mfa")

        # A backup code is a proof too: a new set comes at once, and replaces the old one.
        await pilot.click("#generate-backup-codes")
        new_codes = shown_backup_codes(await on_screen(pilot, BackupCodesScreen))
        await pilot.click("#saved")
        await on_screen(pilot, PreferencesScreen)
        await until(pilot, lambda: "left: 10" in text_of(preferences, "#own-mfa"), "the new count")
        assert text_of(preferences, "#backup-warning") == ""
    assert unused_backup_codes(ctx, "alice") == 10
    assert not MfaService(ctx).verify("alice", codes[9]).accepted  # unused, but from the old set

    # Ten codes of at least ten characters from an alphabet without look-alikes...
    assert len(new_codes) == 10 and len(set(new_codes)) == 10
    for code in new_codes:
        compact = code.replace("-", "")
        assert len(compact) >= 10 and set(compact) <= set(backup_codes.ALPHABET), code
        assert not AMBIGUOUS & set(compact), code
    # ...stored only as hashes: no code, in any spelling, is anywhere in the database.
    stored = database_bytes(ctx, config)
    for code in new_codes:
        for spelling in (code, code.replace("-", ""), code.lower().replace("-", "")):
            assert spelling.encode() not in stored, spelling
    assert MfaService(ctx).verify("alice", new_codes[0]).accepted


def database_bytes(ctx: Context, config: Config) -> bytes:
    """Every byte the database holds for the test: the SQLite files, or PostgreSQL's tables."""
    url = config.database_url
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        return b"".join(
            candidate.read_bytes()
            for candidate in (path, Path(f"{path}-wal"))
            if candidate.exists()
        )
    with ctx.db.read() as session:
        tables = session.exec(
            text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        ).all()
        dump = [
            str(row)
            for (table,) in tables
            for row in session.exec(text(f'SELECT * FROM "{table}"')).all()
        ]
    assert any("backup" in table for (table,) in tables)
    return "\n".join(dump).encode()
