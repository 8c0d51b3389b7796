"""After a run of every flow that handles a secret, a code or a password, none is left in clear.

One console (Pilot) and the in-process CLI go through first run, Server Settings secrets, a new
user with a password, a password change, first-login enrollment (TOTP, email, SMS) with backup
codes, logins with a TOTP code, a backup code and an emailed code, a caller check, a temporary
access pass and an invitation, then the CLI's ``users add``/``set-mfa``/``set-password``/
``verify``/``verify-caller``/``tap create``/``invite``/``settings set``. Every value seen on the
way is a needle, in each spelling it could take. Then the scan: the SQLite files (with WAL and
shared memory, and after a checkpoint) or PostgreSQL's rows and WAL segments, every column of
every table, the audit details, every log record, what the CLI printed, toasts, the process
environment, core dumps, and the screens after each place a secret is shown (enrollment, backup
codes, a pass shown once). Nothing may be found; the places that *do* show a secret, and planted
copies, prove the scanner would see one.

Six-digit codes (TOTP, email, SMS) are short enough to turn up by chance in binary data (a
ciphertext, an HMAC, a WAL page), so they are looked for only in text, as a whole number; they
expire within minutes and are refused on replay anyway.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import os
import re
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
import pytest
from sqlalchemy import text
from sqlmodel import SQLModel, col, select
from textual.pilot import Pilot
from textual.widgets import Checkbox, Input, Static

from mfa_tui.core.access import Actor
from mfa_tui.core.audit import list_events
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.config import Config
from mfa_tui.core.context import Context
from mfa_tui.core.models import MfaCredential
from mfa_tui.core.services.settings_store import SettingsStore
from tests.cli import conftest as cli_fixtures
from tests.cli.conftest import Cli, Result, configure_totp, generate_backup_codes
from tests.core.test_secrets_at_rest import code_spellings, secret_spellings
from tests.e2e import test_verify_service as service_fixtures
from tests.e2e.test_verify_service import HEAVY, PAM_ENV, Installation
from tests.helpers.qr_decode import screen_text
from tests.helpers.smtp_server import SmtpServer, smtp_server
from tests.helpers.twilio_standin import TwilioStandin, twilio_standin
from tests.ui.conftest import (
    ADMIN,
    ADMIN_PASSWORD,
    PASSWORD,
    add_user,
    click,
    console,
    enter_code,
    fill,
    log_in,
    notifications,
    on_screen,
    screen_name,
    search,
    search_and_open,
    secret_of,
    static_text,
    wait_until,
)
from tests.ui.test_helpdesk_flow import _panel_uri
from tests.ui.test_user_edit_flow import choose_type

cheap_password_hashing = cli_fixtures.cheap_password_hashing  # autouse, here too
clean_env = cli_fixtures.clean_env
cli = cli_fixtures.cli
sqlite_cli = cli_fixtures.sqlite_cli
sqlite_template = cli_fixtures.sqlite_template
sqlite_ready = cli_fixtures.sqlite_ready
installation = service_fixtures.installation

ALICE_PASSWORD = "Alice-Typed-Password-31"
BOB_NEW_PASSWORD = "Bob-Changed-Password-58"
ERIN_PASSWORD = "Erin-Invited-Password-74"
FRANK_PASSWORD = "Frank-Cli-Password-66"
FRANK_NEW_PASSWORD = "Frank-Renewed-Password-90"
GUS_PASSWORD = "Gus-Service-Password-81"
SMTP_USER = "mailer"
SMTP_PASSWORD = "Smtp-Login-Password-23"
CLI_SECRETS = {
    "radius.secret": "Radius-Shared-Secret-45",
    "radius.failover_secret": "Radius-Failover-Secret-12",
    "duo.secret_key": "DuoSecretKey0123456789abcdefghijKLMNOPQRST",
    "yubikey.api_key": base64.b64encode(b"yubikey-api-key-for-a-test!").decode(),
}
CAROL, DORA_PHONE = "carol@example.com", "+14155550123"
# Files a crash could leave, by the names the kernel and systemd-coredump give them.
CORE_NAMES = ("core", "core.*", "*.core", "vgcore.*")
SERVER_LOGS = Path("/var/log/postgresql")
# aiosmtpd is the test's own mail server: it sees the SMTP login and the mail, by definition.
FOREIGN_LOGGERS = ("mail.log",)


# Needles and the scanner ---------------------------------------------------------------------------


@dataclass
class Needles:
    """Every secret the run handled, each in the spellings it could be stored or shown in."""

    spellings: list[tuple[str, bytes]] = field(default_factory=list)  # (kind, spelling)
    short_codes: list[tuple[str, str]] = field(default_factory=list)  # (kind, six digits)
    secrets: int = 0
    flows: list[str] = field(default_factory=list)

    def otp_secret(self, kind: str, uri: str) -> str:
        """An authenticator's secret from its otpauth URI; returns it in base32."""
        encoded = secret_of(uri)
        raw = base64.b32decode(encoded + "=" * (-len(encoded) % 8))
        self._add(kind, secret_spellings(raw))
        return encoded

    def code(self, kind: str, code: str) -> str:
        """A backup code, a pass or an invitation (letters and dashes)."""
        assert len(code.replace("-", "")) >= 10, kind
        self._add(kind, [*code_spellings(code), code.encode("utf-16-le")])
        return code

    def text(self, kind: str, value: str) -> str:
        """A password or a delivery credential."""
        self._add(kind, [value.encode(), value.lower().encode(), value.encode("utf-16-le")])
        return value

    def digits(self, kind: str, code: str) -> str:
        assert re.fullmatch(r"\d{6}", code), kind
        self.short_codes.append((kind, code))
        self.secrets += 1
        return code

    def _add(self, kind: str, spellings: list[bytes]) -> None:
        self.spellings += [(kind, spelling) for spelling in dict.fromkeys(spellings)]
        self.secrets += 1

    @property
    def encodings(self) -> int:
        return len(self.spellings) + len(self.short_codes)


def _short(spelling: bytes) -> str:
    """What a failure may say of a spelling: its first three characters, never more."""
    return spelling[:3].decode("utf-8", "replace").replace("\x00", "") + "…"


def hits(needles: Needles, data: bytes, *, as_text: bool, short_codes: bool = False) -> list[str]:
    """Each needle in ``data`` (kind and a 3-character prefix). Text is also read without markup
    (an SVG screen capture splits a row into styled runs) and with every space removed (a screen
    shows a secret in groups); six-digit codes only as a whole number in text (``short_codes``)."""
    found = [(kind, spelling) for kind, spelling in needles.spellings if spelling in data]
    if as_text:
        decoded = data.decode("utf-8", "replace")
        content = html.unescape(decoded)
        bare = html.unescape(re.sub(r"<[^>]*>", "", decoded))
        views = [bare, *(re.sub(r"\s", "", view) for view in (content, bare))]
        found += [
            (kind, spelling)
            for view in (v.encode() for v in views)
            for kind, spelling in needles.spellings
            if spelling in view
        ]
        if short_codes:
            found += [
                (kind, code.encode())
                for kind, code in needles.short_codes
                # Not after a dot: the microseconds of a timestamp are six digits too.
                if re.search(rf"(?<![0-9A-Za-z.]){code}(?![0-9A-Za-z])", content)
            ]
    return sorted({f"{kind} ({_short(spelling)})" for kind, spelling in found})


@dataclass
class Scan:
    needles: Needles
    found: list[str] = field(default_factory=list)
    scanned: dict[str, int] = field(default_factory=dict)  # category → bytes read

    def binary(self, category: str, place: str, data: bytes) -> None:
        self._record(category, place, data, hits(self.needles, data, as_text=False))

    def text(self, category: str, place: str, content: str, *, short_codes: bool = True) -> None:
        data = content.encode()
        self._record(
            category, place, data, hits(self.needles, data, as_text=True, short_codes=short_codes)
        )

    def _record(self, category: str, place: str, data: bytes, found: list[str]) -> None:
        self.scanned[category] = self.scanned.get(category, 0) + len(data)
        self.found += [f"{what} in {place}" for what in found]

    def assert_clean(self) -> None:
        assert not self.found, "secret material left in clear:\n" + "\n".join(self.found)


def positive_control(needles: Needles, folder: Path) -> None:
    """Planted in a file between random bytes, every kind of needle is found by the same scan."""
    planted = folder / "planted.bin"
    parts = [os.urandom(64)]
    for _, spelling in needles.spellings:
        parts += [spelling, os.urandom(16)]
    planted.write_bytes(b"".join(parts))
    found = hits(needles, planted.read_bytes(), as_text=False)
    assert {entry.split(" (")[0] for entry in found} == {k for k, _ in needles.spellings}
    words = " ".join(code for _, code in needles.short_codes)
    found = hits(needles, f"a log line: {words}.".encode(), as_text=True, short_codes=True)
    assert {entry.split(" (")[0] for entry in found} == {k for k, _ in needles.short_codes}


# What the scan reads -------------------------------------------------------------------------------


def table_rows(ctx: Context) -> Iterator[tuple[str, list[Any]]]:
    """Every value of every table, as the database returns it (SQLite and PostgreSQL)."""
    with ctx.db.read() as session:
        for table in SQLModel.metadata.sorted_tables:
            for row in session.execute(table.select()).all():
                yield table.name, list(row)


def scan_tables(scan: Scan, ctx: Context) -> int:
    rows = 0
    for table, values in table_rows(ctx):
        rows += 1
        for value in values:
            if isinstance(value, bytes):
                scan.binary("rows", f"a {table} row (bytes)", value)
            elif value is not None:
                # JSON columns come back as dicts: scan them as the text they are stored as.
                shown = json.dumps(value) if isinstance(value, dict | list) else str(value)
                scan.text("rows", f"a {table} row", shown)
    return rows


def sealed_secret(ctx: Context) -> bytes:
    """The newest encrypted OTP secret as stored: what proves the scan reads the right bytes
    (the newest, so its WAL segment is still there whatever checkpoint ran meanwhile)."""
    with ctx.db.read() as session:
        stored = session.exec(
            select(MfaCredential.secret)
            .where(MfaCredential.type == "totp")
            .order_by(col(MfaCredential.created_at).desc())
        ).first()
    assert isinstance(stored, bytes) and len(stored) > 20
    return stored


def scan_sqlite_files(scan: Scan, ctx: Context, path: Path) -> None:
    sealed = sealed_secret(ctx)
    files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
    assert files[1].exists() and files[1].stat().st_size > 0, "the run left nothing in the WAL"
    contents = {file.name: file.read_bytes() for file in files if file.exists()}
    assert any(sealed in content for content in contents.values()), "the scan misses the rows"
    for name, content in contents.items():
        scan.binary("sqlite", f"the SQLite file {name}", content)
    with ctx.db.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    content = path.read_bytes()
    assert sealed in content
    scan.binary("sqlite", f"the SQLite file {path.name} after a checkpoint", content)


def wal_position(ctx: Context) -> str:
    with ctx.db.read() as session:
        return str(session.execute(text("SELECT pg_walfile_name(pg_current_wal_lsn())")).scalar())


def scan_postgres_wal(scan: Scan, ctx: Context, first: str) -> int:
    """The WAL segments written since ``first``: every change the server logged, old and new.

    Read through ``pg_read_binary_file`` (the test role is a superuser); the segments hold other
    tests' changes too, which no needle of this run can match.
    """
    sealed = sealed_secret(ctx)
    last = wal_position(ctx)
    with ctx.db.read() as session:
        names = [
            name
            for (name,) in session.execute(
                text("SELECT name FROM pg_ls_waldir() WHERE name BETWEEN :a AND :b ORDER BY name"),
                {"a": first, "b": last},
            ).all()
        ]
        seen = False
        read = 0
        for name in names:
            data = session.execute(  # None: recycled by a checkpoint since it was listed
                text(
                    "SELECT pg_read_binary_file('pg_wal/' || :name, 0, "
                    "pg_size_bytes(current_setting('wal_segment_size')), true)"
                ),
                {"name": name},
            ).scalar()
            if data is not None:
                read += 1
                seen = seen or sealed in data
                scan.binary("pg wal", f"the PostgreSQL WAL segment {name}", data)
    assert seen, f"the run's last writes are not in the WAL segments {names}"
    return read


def server_logs() -> dict[Path, int]:
    """PostgreSQL's log files (where Debian's pg_ctlcluster writes the server's stderr) that this
    account may read, with their sizes now: what the run appends is scanned."""
    return {
        path: path.stat().st_size
        for path in sorted(SERVER_LOGS.glob("*.log"))
        if os.access(path, os.R_OK)
    }


def scan_server_logs(scan: Scan, before: dict[Path, int]) -> str:
    for path, size in before.items():
        with path.open("rb") as log:
            log.seek(size)
            scan.text(
                "pg log", f"the PostgreSQL log {path.name}", log.read().decode("utf-8", "replace")
            )
    if not before:
        return f"no readable server log in {SERVER_LOGS}"
    return f"{scan.scanned['pg log']:,} bytes of server log"


def scan_environment(scan: Scan, pid: int | str = "self") -> None:
    for part in ("environ", "cmdline"):
        deadline = time.monotonic() + 10
        # Empty for a moment after exec, until the kernel has laid out the new process's stack.
        while not (content := Path(f"/proc/{pid}/{part}").read_bytes()):
            assert time.monotonic() < deadline, f"/proc/{pid}/{part} stays empty"
            time.sleep(0.01)
        scan.text("environ", f"/proc/{pid}/{part}", content.replace(b"\0", b"\n").decode())


def core_file_limit(pid: int) -> tuple[str, str]:
    """The soft and hard core file size limits of a live process, as /proc shows them."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max core file size"):
            soft, hard = line.split()[4:6]
            return soft, hard
    raise AssertionError(f"no core file size limit in /proc/{pid}/limits")


def allow_core_dumps() -> None:
    """In a child before exec: as a shell after ``ulimit -c unlimited`` (up to the hard limit)."""
    _, hard = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))


def wait_for_no_core_dumps(pid: int) -> None:
    """mfa-tui lowers both limits to 0 first thing in ``main``: a crash leaves no memory behind."""
    deadline = time.monotonic() + 10
    while core_file_limit(pid) != ("0", "0"):
        assert time.monotonic() < deadline, f"core dumps still allowed: {core_file_limit(pid)}"
        time.sleep(0.01)


def core_dump_places(*extra: Path) -> list[Path]:
    """Where a core dump of this run would be: the test folders, the working folder, and the
    folder the kernel's core_pattern names (when it is a path, not a pipe to a collector)."""
    places = [Path.cwd(), *extra]
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    if pattern.startswith("/"):
        places.append(Path(pattern).parent)
    return [place for place in dict.fromkeys(places) if place.is_dir()]


def scan_core_dumps(scan: Scan, places: list[Path]) -> int:
    dumps = [found for place in places for name in CORE_NAMES for found in place.glob(name)]
    for dump in dumps:
        if dump.is_file():
            scan.binary("core dumps", f"the core dump {dump}", dump.read_bytes())
    assert dumps == [], f"core dumps left by the run: {dumps}"
    return len(places)


def scan_logs(scan: Scan, records: list[logging.LogRecord], control: str) -> int:
    """Every log record of the run; the test's own SMTP server logs the mail it received, so the
    scanner must find the emailed code ``control`` there (and nowhere else)."""
    lines = {
        record: f"{record.name} {record.levelname} {record.getMessage()} {record.exc_text or ''}"
        for record in records
    }
    foreign = "\n".join(line for r, line in lines.items() if r.name.startswith(FOREIGN_LOGGERS))
    assert any(
        entry.startswith(control)
        for entry in hits(scan.needles, foreign.encode(), as_text=True, short_codes=True)
    ), "the scanner misses a code in a log line"
    kept = [record for record in lines if not record.name.startswith(FOREIGN_LOGGERS)]
    for record in kept:
        scan.text("logs", f"the log record of {record.name}", lines[record])
    return len(kept)


def scan_audit(scan: Scan, ctx: Context) -> int:
    with ctx.db.read() as session:
        events = list_events(session)
    for event in events:
        line = f"{event.actor} {event.action} {event.target} {json.dumps(event.details)}"
        scan.text("audit", f"the audit event {event.action}", line)
    return len(events)


# Screens ---------------------------------------------------------------------------------------------


@dataclass
class Captures:
    """Screens after a secret was shown (must hold none) and where it is shown (must hold it)."""

    needles: Needles
    after: list[tuple[str, str, str]] = field(default_factory=list)  # (label, svg, text)
    held: list[tuple[str, str]] = field(default_factory=list)  # (label, text of the stack)
    shown: int = 0

    def take(self, pilot: Pilot[Any], label: str) -> None:
        label = f"{label} ({screen_name(pilot)})"
        self.after.append((label, pilot.app.export_screenshot(), _text(pilot)))
        # What the screens under it would show again if one went back to them.
        self.held.append((label, _held_text(pilot)))

    def expect(self, pilot: Pilot[Any], label: str, kind: str) -> None:
        """The screen whose job is to show ``kind``: the scanner must find it there."""
        for seen in (pilot.app.export_screenshot(), _held_text(pilot)):
            found = hits(self.needles, seen.encode(), as_text=True)
            assert any(entry.startswith(kind) for entry in found), f"{kind} not seen on {label}"
        self.shown += 1

    def scan(self, scan: Scan) -> None:
        for label, svg, rows in self.after:
            scan.text("screens", f"the screen capture of {label}", svg, short_codes=False)
            scan.text("screens", f"the screen text of {label}", rows)
        for label, held in self.held:
            scan.text("screen stack", f"a screen kept under {label}", held)


def _text(pilot: Pilot[Any]) -> str:
    return "\n".join(screen_text(pilot.app))


def _held_text(pilot: Pilot[Any]) -> str:
    """The text of every screen on the stack: what its widgets hold to show (masked password
    fields left out: they never show their value)."""
    parts = []
    for screen in pilot.app.screen_stack:
        for widget in screen.query("*"):
            if isinstance(widget, Input) and not widget.password:
                parts.append(widget.value)
            elif isinstance(widget, Static):
                parts.append(str(widget.render()))
    return "\n".join(parts)


async def log_out(pilot: Pilot[Any]) -> None:
    await pilot.press("x")
    await on_screen(pilot, "LoginScreen")


async def find(pilot: Pilot[Any], name: str) -> None:
    """On the users screen: an empty search field, then ``name`` searched."""
    pilot.app.screen.query_one("#search", Input).value = ""
    await search(pilot, name)


async def enroll_totp_on_screen(
    pilot: Pilot[Any], clock: FixedClock, needles: Needles, captures: Captures, name: str
) -> tuple[str, list[str]]:
    """Continue on the enrollment screen, the code of the secret shown, then the backup codes;
    returns the secret (base32) and the codes."""
    await click(pilot, "#continue")
    await wait_until(pilot, lambda: _panel_uri(pilot) is not None, "the QR code")
    uri = _panel_uri(pilot)
    assert uri is not None
    if screen_name(pilot) == "QrFullScreen":
        await pilot.press("escape")
        await on_screen(pilot, "EnrollmentScreen")
    secret = needles.otp_secret(f"TOTP secret of {name}", uri)
    captures.expect(pilot, "the enrollment screen", f"TOTP secret of {name}")
    code = needles.digits("TOTP code", pyotp.TOTP(secret).at(clock.now()))
    await fill(pilot, "#enrollment-code", code)
    await pilot.press("enter")
    return secret, await saved_backup_codes(pilot, needles, captures, name)


async def saved_backup_codes(
    pilot: Pilot[Any], needles: Needles, captures: Captures, name: str
) -> list[str]:
    await on_screen(pilot, "BackupCodesScreen")
    codes = static_text(pilot, "#backup-codes").split()
    assert len(codes) == 10
    for code in codes:
        needles.code(f"backup code of {name}", code)
    captures.expect(pilot, "the backup codes screen", f"backup code of {name}")
    await click(pilot, "#saved")
    await on_screen(pilot, "PreferencesScreen")
    captures.take(pilot, f"{name} after leaving enrollment")
    return codes


async def enroll_delivered_on_screen(
    pilot: Pilot[Any], needles: Needles, captures: Captures, name: str, read: Callable[[], str]
) -> None:
    await click(pilot, "#continue")
    await wait_until(
        pilot,
        lambda: "code was sent" in static_text(pilot, "#enrollment-instructions"),
        "the code to be sent",
    )
    await fill(pilot, "#enrollment-code", needles.digits(f"code sent to {name}", read()))
    await pilot.press("enter")
    await saved_backup_codes(pilot, needles, captures, name)


async def console_flows(
    ctx: Context,
    clock: FixedClock,
    smtp: SmtpServer,
    gateway: TwilioStandin,
    needles: Needles,
    captures: Captures,
) -> list[str]:
    """Every screen flow that handles a secret, in one console; returns the toasts shown."""
    flows = needles.flows
    async with console(ctx, clock) as pilot:
        assert screen_name(pilot) == "FirstRunScreen"
        await fill(pilot, "#username", ADMIN)
        await fill(pilot, "#password", needles.text("password of root", ADMIN_PASSWORD))
        await fill(pilot, "#password-again", ADMIN_PASSWORD)
        await click(pilot, "#create")
        await on_screen(pilot, "LoginScreen")
        captures.take(pilot, "first run done")
        flows.append("first run")

        # The rest of the setup through the services: users and the non-secret settings.
        delivery = {**smtp.settings(), **gateway.settings()}
        secret_keys = ("smtp.password", "sms.auth_token")
        SettingsStore(ctx).set_many(
            Actor.cli(), {k: v for k, v in delivery.items() if k not in secret_keys}
        )

        await log_in(pilot, ADMIN, ADMIN_PASSWORD)
        await on_screen(pilot, "UsersScreen")
        await pilot.press("s")
        await on_screen(pilot, "ServerSettingsScreen")
        for name in ("email", "sms"):
            pilot.app.screen.query_one(f"#supported-{name}", Checkbox).value = True
        await fill(pilot, "#setting-smtp-password", needles.text("smtp.password", SMTP_PASSWORD))
        await fill(
            pilot, "#setting-sms-auth-token", needles.text("sms.auth_token", gateway.auth_token)
        )
        await pilot.press("ctrl+s")
        await wait_until(
            pilot, lambda: static_text(pilot, "#settings-message") == "Settings saved.", "saving"
        )
        captures.take(pilot, "Server Settings saved")
        await pilot.press("escape")
        await on_screen(pilot, "UsersScreen")
        flows.append("server settings secrets")
        needles.text("password of the seeded users", PASSWORD)
        add_user(ctx, "bob")
        add_user(ctx, "carol", email=CAROL, mfa_type="email")
        add_user(ctx, "dora", phone=DORA_PHONE, mfa_type="sms")
        add_user(ctx, "erin", password=None, mfa_type="totp")

        await pilot.press("n")
        await on_screen(pilot, "UserEditScreen")
        await fill(pilot, "#username", "alice")
        await fill(pilot, "#password", needles.text("password of alice", ALICE_PASSWORD))
        await choose_type(pilot, "totp")
        await click(pilot, "#configure-later")
        await click(pilot, "#update")
        await on_screen(pilot, "UsersScreen")
        captures.take(pilot, "alice created")
        flows.append("user created with a password")

        await find(pilot, "bob")
        await search_and_open(pilot, "bob")
        await fill(pilot, "#password", needles.text("new password of bob", BOB_NEW_PASSWORD))
        await click(pilot, "#update")
        await on_screen(pilot, "UsersScreen")
        captures.take(pilot, "bob's password changed")
        flows.append("password change")

        await find(pilot, "erin")
        await pilot.press("i")
        await on_screen(pilot, "ConfirmScreen")
        await pilot.press("y")
        await on_screen(pilot, "ShownOnceScreen")
        invitation = needles.code(
            "invitation of erin", static_text(pilot, "#shown-once-code").strip()
        )
        captures.expect(pilot, "the invitation shown once", "invitation of erin")
        await pilot.press("escape")
        await on_screen(pilot, "UsersScreen")
        captures.take(pilot, "invitation closed")
        await log_out(pilot)
        flows.append("invitation")

        await log_in(pilot, "alice", ALICE_PASSWORD)
        await on_screen(pilot, "EnrollmentScreen")
        alice, alice_codes = await enroll_totp_on_screen(pilot, clock, needles, captures, "alice")
        await log_out(pilot)
        captures.take(pilot, "alice logged out")
        flows.append("first-login TOTP enrollment with backup codes")

        clock.advance(seconds=30)
        await log_in(pilot, "alice", ALICE_PASSWORD)
        await enter_code(pilot, needles.digits("TOTP code", pyotp.TOTP(alice).at(clock.now())))
        await on_screen(pilot, "PreferencesScreen")
        captures.take(pilot, "alice in with a TOTP code")
        await log_out(pilot)
        flows.append("login with a TOTP code")

        await log_in(pilot, "alice", ALICE_PASSWORD)
        await on_screen(pilot, "SecondFactorScreen")
        await click(pilot, "#use-backup-code")
        await enter_code(pilot, alice_codes[0])
        await on_screen(pilot, "PreferencesScreen")
        captures.take(pilot, "alice in with a backup code")
        await log_out(pilot)
        flows.append("login with a backup code")

        await log_in(pilot, "carol", PASSWORD)
        await on_screen(pilot, "EnrollmentScreen")
        await enroll_delivered_on_screen(
            pilot, needles, captures, "carol", lambda: smtp.last_code_to(CAROL)
        )
        await log_out(pilot)
        clock.advance(seconds=61)
        await log_in(pilot, "carol", PASSWORD)
        await on_screen(pilot, "SecondFactorScreen")
        await wait_until(pilot, lambda: len(smtp.messages) == 2, "the login code")
        await enter_code(pilot, needles.digits("code sent to carol", smtp.last_code_to(CAROL)))
        await on_screen(pilot, "PreferencesScreen")
        captures.take(pilot, "carol in with an emailed code")
        await log_out(pilot)
        assert smtp.logins == [SMTP_USER, SMTP_USER]  # the password typed in Server Settings
        flows += ["email enrollment", "login with an emailed code"]

        await log_in(pilot, "dora", PASSWORD)
        await on_screen(pilot, "EnrollmentScreen")
        await enroll_delivered_on_screen(
            pilot, needles, captures, "dora", lambda: gateway.last_code_to(DORA_PHONE)
        )
        await log_out(pilot)
        flows.append("SMS enrollment")

        clock.advance(seconds=30)
        await log_in(pilot, ADMIN, ADMIN_PASSWORD)
        await on_screen(pilot, "UsersScreen")
        await find(pilot, "alice")
        await pilot.press("v")
        await on_screen(pilot, "VerifyCallerScreen")
        code = needles.digits("TOTP code", pyotp.TOTP(alice).at(clock.now()))
        await fill(pilot, "#caller-code", code)
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: static_text(pilot, "#caller-status").startswith("Caller verified"),
            "the caller check",
        )
        captures.take(pilot, "caller verified")
        await pilot.press("escape")
        await on_screen(pilot, "UsersScreen")
        await pilot.press("t")
        await on_screen(pilot, "ShownOnceScreen")
        tap = needles.code("access pass of alice", static_text(pilot, "#shown-once-code").strip())
        captures.expect(pilot, "the pass shown once", "access pass of alice")
        await pilot.press("escape")
        await on_screen(pilot, "UsersScreen")
        captures.take(pilot, "access pass closed")
        await log_out(pilot)
        flows += ["caller check", "temporary access pass"]

        await log_in(pilot, "alice", ALICE_PASSWORD)
        await on_screen(pilot, "SecondFactorScreen")
        await click(pilot, "#access-pass")
        await enter_code(pilot, tap)
        await on_screen(pilot, "EnrollmentScreen")
        await click(pilot, "#leave")
        await on_screen(pilot, "LoginScreen")
        captures.take(pilot, "alice left the enrollment a pass opened")
        flows.append("login with the pass")

        await click(pilot, "#invitation")
        await on_screen(pilot, "InvitationScreen")
        await fill(pilot, "#invite-username", "erin")
        await fill(pilot, "#invite-code", invitation)
        await fill(pilot, "#invite-password", needles.text("password of erin", ERIN_PASSWORD))
        await fill(pilot, "#invite-password-again", ERIN_PASSWORD)
        await pilot.press("enter")
        await on_screen(pilot, "EnrollmentScreen")
        await enroll_totp_on_screen(pilot, clock, needles, captures, "erin")
        await log_out(pilot)
        captures.take(pilot, "erin logged out")
        flows.append("invitation redeemed with a new password")
        return notifications(pilot)


def cli_flows(cli: Cli, needles: Needles) -> tuple[list[tuple[str, Result]], int]:
    """The CLI's commands that take or print a secret, in process. Returns what the scan reads:
    every output but the ones whose purpose is to print a secret once (those are checked to
    show it), and the number of those."""
    outputs: list[tuple[str, Result]] = []

    def run(*args: str, stdin: Any = "") -> Result:
        result = cli.ok(*args, stdin=stdin)
        outputs.append((" ".join(args[:3]), result))
        return result

    printed_once: list[str] = []

    def shown_once(kind: str, result: Result) -> None:
        found = hits(needles, (result.out + result.err).encode(), as_text=True)
        assert any(entry.startswith(kind) for entry in found), kind
        printed_once.append(kind)

    run("users", "add", "frank", "--password-stdin", stdin=FRANK_PASSWORD + "\n")
    needles.text("password of frank", FRANK_PASSWORD)

    def code_for(printed: str) -> str:
        uri = printed.strip().splitlines()[-1]
        return needles.digits("TOTP code", pyotp.TOTP(secret_of(uri)).now()) + "\n"

    enrolled = cli.ok("users", "set-mfa", "frank", "--type", "totp", stdin=code_for)
    frank = needles.otp_secret("TOTP secret of frank", enrolled.out.splitlines()[0])
    shown_once("TOTP secret of frank", enrolled)
    after_uri = Result(0, enrolled.out.split("\n", 1)[1], enrolled.err)
    outputs.append(("users set-mfa (after the URI)", after_uri))
    next_step = pyotp.TOTP(frank).at(time.time() + 30)  # within the drift, never a replay
    run("verify", "frank", stdin=needles.digits("TOTP code", next_step) + "\n")
    codes = [needles.code("backup code of frank", c) for c in generate_backup_codes(cli, "frank")]
    run("verify", "frank", stdin=codes[0] + "\n")
    run("users", "verify-caller", "frank", "--backup-code", stdin=codes[1] + "\n")
    run(
        "users",
        "set-password",
        "frank",
        "--password-stdin",
        stdin=needles.text("new password of frank", FRANK_NEW_PASSWORD) + "\n",
    )
    for key, value in CLI_SECRETS.items():
        run("settings", "set", key, "--value-stdin", stdin=needles.text(key, value) + "\n")
    run("settings", "show")
    run("settings", "show", "--json")
    tap = cli.ok("users", "tap", "create", "frank", "--reason", "ticket 12: phone lost")
    needles.code("access pass of frank", tap.out.strip())
    shown_once("access pass of frank", tap)
    run("users", "add", "gina")
    run("users", "set-mfa", "gina", "--type", "totp", "--configure-later")
    invitation = cli.ok("users", "invite", "gina")
    needles.code("invitation of gina", invitation.out.strip())
    shown_once("invitation of gina", invitation)
    run("audit", "list")
    run("audit", "list", "--json")
    run("audit", "list", "--csv")
    needles.flows += ["CLI user with a password", "CLI TOTP enrollment", "CLI verify (TOTP)"]
    needles.flows += ["CLI verify (backup code)", "CLI caller check", "CLI password change"]
    needles.flows += ["CLI settings secrets", "CLI access pass", "CLI invitation"]
    return outputs, len(printed_once)


# The tests -------------------------------------------------------------------------------------------


@pytest.fixture
def mail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    """A real SMTP server that requires a login (after STARTTLS): the password typed in Server
    Settings is what logs in."""
    folder = tmp_path_factory.mktemp("smtp-cert")
    with smtp_server(
        security="starttls", username=SMTP_USER, password=SMTP_PASSWORD, cert_dir=folder
    ) as server:
        yield server


@pytest.fixture
def gateway() -> Iterator[TwilioStandin]:
    with twilio_standin() as standin:
        yield standin


async def test_a_full_run_leaves_no_secret_code_or_password_in_clear(
    ctx: Context,
    config: Config,
    clock: FixedClock,
    cli: Cli,
    mail: SmtpServer,
    gateway: TwilioStandin,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # SQL echo is no log of the app's; then every record, from DEBUG (this order: the last call
    # also sets the capturing handler's level).
    caplog.set_level(logging.WARNING, logger="sqlalchemy")
    caplog.set_level(logging.DEBUG)
    postgres = not config.database_url.startswith("sqlite")
    wal_start = wal_position(ctx) if postgres else ""
    logs_before = server_logs() if postgres else {}
    started = time.monotonic()
    needles = Needles()
    captures = Captures(needles)

    toasts = await console_flows(ctx, clock, mail, gateway, needles, captures)
    outputs, printed_once = cli_flows(cli, needles)
    positive_control(needles, tmp_path_factory.mktemp("planted"))

    scan = Scan(needles)
    rows = scan_tables(scan, ctx)
    events = scan_audit(scan, ctx)
    if postgres:
        segments = scan_postgres_wal(scan, ctx, wal_start)
        database = f"{scan.scanned['pg wal']:,} bytes of {segments} WAL segments, "
        database += scan_server_logs(scan, logs_before)
    else:
        scan_sqlite_files(scan, ctx, Path(config.database_url.removeprefix("sqlite:///")))
        database = f"{scan.scanned['sqlite']:,} bytes of db, wal, shm (and after a checkpoint)"
    files = [p for p in tmp_path.rglob("*") if p.is_file() and not p.name.startswith("mfa.db")]
    for file in files:  # the key file, the data folder: anything else the run wrote
        scan.binary("files", f"the file {file.relative_to(tmp_path)}", file.read_bytes())
    records = scan_logs(scan, caplog.records, "code sent to carol")
    for command, result in outputs:
        scan.text("cli", f"the output of {command}", result.out + result.err)
    for toast in toasts:
        scan.text("toasts", "a toast", toast)
    captures.scan(scan)
    scan_environment(scan)
    places = scan_core_dumps(scan, core_dump_places(tmp_path))
    scan.assert_clean()

    engine = "PostgreSQL" if postgres else "SQLite"
    core_limit = resource.getrlimit(resource.RLIMIT_CORE)[0]
    print(
        f"\nsecret scan ({engine}): {len(needles.flows)} flows, {needles.secrets} secrets × "
        f"{needles.encodings} spellings; scanned {rows} rows + {events} audit events, {database}, "
        f"{len(files)} other files, {records} log records, {len(outputs)} CLI outputs, "
        f"{len(toasts)} toasts, /proc/self environ + cmdline, {places} core-dump places "
        f"(none; core size limit {core_limit}), {len(captures.after)} screen captures + the "
        f"screens under them; the secret found where it must be shown: {captures.shown} screens "
        f"+ {printed_once} CLI outputs; {len(scan.found)} found elsewhere "
        f"({time.monotonic() - started:.1f} s)"
    )


@pytest.mark.slow
def test_the_verify_service_and_its_clients_keep_codes_out_of_logs_and_environment(
    installation: Installation, sqlite_ready: Cli, tmp_path: Path
) -> None:
    """The long-running ``verify-service`` and a ``verify --pam`` client, as on a server."""
    needles = Needles()
    sqlite_ready.ok("users", "add", "gus", "--password-stdin", stdin=GUS_PASSWORD + "\n")
    needles.text("password of gus", GUS_PASSWORD)
    secret = configure_totp(sqlite_ready, "gus")
    needles.otp_secret("TOTP secret of gus", f"otpauth://totp/x?secret={secret}")
    codes = [
        needles.code("backup code of gus", c) for c in generate_backup_codes(sqlite_ready, "gus")
    ]
    service = installation.start()
    scan = Scan(needles)

    answers = []
    for code in (needles.digits("TOTP code", pyotp.TOTP(secret).now()), codes[0], "000000"):
        client = subprocess.Popen(
            [sys.executable, "-X", "importtime", "-m", "mfa_tui", "verify", "--pam", "--require"],
            env={**installation.env, **PAM_ENV, "PAM_USER": "gus"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=allow_core_dumps,
        )
        scan_environment(scan, client.pid)  # alive: it waits for the code on standard input
        scan_environment(scan, service.pid)
        wait_for_no_core_dumps(client.pid)
        assert core_file_limit(service.pid) == ("0", "0")
        out, err = client.communicate(code + "\0", timeout=60)
        answers.append(client.returncode)
        lines = err.splitlines()
        modules = {line.rsplit("|", 1)[-1].strip() for line in lines if line.startswith("import")}
        assert not {m.split(".")[0] for m in modules} & set(HEAVY), "the client answered itself"
        said = [line for line in lines if not line.startswith("import time:")]
        scan.text("cli", "a verify client's output", "\n".join([out, *said]))
    assert answers == [0, 0, 1]
    assert installation.stop() == 0
    log = installation.log()
    assert "listening on" in log
    scan.text("logs", "the verify service's log", log)
    database = Path(sqlite_ready.db_url.removeprefix("sqlite:///"))
    contents = {f.name: f.read_bytes() for f in sorted(database.parent.glob(f"{database.name}*"))}
    context = sqlite_ready.context()
    try:
        sealed = sealed_secret(context)
    finally:
        context.close()
    assert any(sealed in content for content in contents.values()), "the scan misses the rows"
    for name, content in contents.items():
        scan.binary("sqlite", f"the SQLite file {name}", content)
    places = scan_core_dumps(scan, core_dump_places(tmp_path, installation.folder))
    scan.assert_clean()
    print(
        f"\nsecret scan (verify service): {needles.secrets} secrets × {needles.encodings} "
        f"spellings; 3 clients and the service: /proc environ and cmdline of each while alive, "
        f"{scan.scanned['logs']:,} bytes of service log, {scan.scanned['sqlite']:,} bytes of "
        f"SQLite files, {places} core-dump places; {len(scan.found)} found"
    )
