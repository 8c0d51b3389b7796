"""``settings show|set`` and ``audit list`` (text, JSON, CSV, --verify), and who the CLI is."""

from __future__ import annotations

import csv
import getpass
import io

from sqlalchemy import create_engine, text

from mfa_tui.core.audit import AuditEntry
from tests.cli.conftest import Cli, assert_one_error_line

SECRET = "hunter2-very-secret"


# settings -----------------------------------------------------------------------------------------


def test_settings_show_lists_every_key_with_its_value(ready: Cli) -> None:
    shown = ready.ok("settings", "show").out
    values = {
        key: value.strip() for key, _, value in (line.partition(" ") for line in shown.splitlines())
    }
    assert values["mfa.usage"] == "optional"
    assert values["lockout.attempts"] == "5"
    assert values["smtp.password"] == ""
    for key in (
        "smtp.password",
        "sms.auth_token",
        "radius.secret",
        "duo.secret_key",
        "tap.single_use",
    ):
        assert key in values

    as_json = ready.ok("settings", "show", "--json").json
    assert as_json["mfa.usage"] == "optional"
    assert as_json["lockout.attempts"] == 5
    assert as_json["alternate.backup_codes"] is True
    assert as_json["mfa.supported"] == ["totp"]
    assert as_json["smtp.password"] == ""
    assert set(as_json) >= {"totp.issuer", "smtp.host", "sms.mode", "yubikey.mode", "duo.api_host"}


def test_settings_set_changes_a_value_and_audits_it(ready: Cli) -> None:
    result = ready.ok("settings", "set", "lockout.attempts", "7")
    assert result.out.strip() == "lockout.attempts = 7"
    assert ready.ok("settings", "show", "--json").json["lockout.attempts"] == 7
    ready.ok("settings", "set", "mfa.usage", "REQUIRED")
    assert ready.ok("settings", "show", "--json").json["mfa.usage"] == "required"

    newest = ready.ok("audit", "list", "--json").json[0]
    assert newest["action"] == "settings.change"
    assert newest["details"] == {"mfa.usage": {"before": "optional", "after": "required"}}


def test_settings_set_refuses_a_bad_key_or_value(sqlite_ready: Cli) -> None:
    assert_one_error_line(sqlite_ready("settings", "set", "no.such.key", "1"), 2, "not a setting")
    assert_one_error_line(
        sqlite_ready("settings", "set", "lockout.attempts", "many"), 2, "whole number"
    )
    assert_one_error_line(sqlite_ready("settings", "set", "lockout.attempts", "0"), 2, "at least 1")
    assert_one_error_line(sqlite_ready("settings", "set", "mfa.usage", "sometimes"), 2, "skipped")
    assert_one_error_line(sqlite_ready("settings", "set", "totp.issuer", "a:b"), 2, "':'")
    assert_one_error_line(
        sqlite_ready("settings", "set", "mfa.default_type", "sms"),
        2,
        "must be one of the supported",
    )
    assert_one_error_line(sqlite_ready("settings", "set", "lockout.attempts"), 2, "--value-stdin")
    assert_one_error_line(
        sqlite_ready("settings", "set", "lockout.attempts", "3", "--value-stdin", stdin="4\n"),
        2,
        "not both",
    )
    shown = sqlite_ready.ok("settings", "show", "--json").json
    assert (shown["lockout.attempts"], shown["mfa.usage"], shown["totp.issuer"]) == (
        5,
        "optional",
        "mfa-tui",
    )


def test_a_secret_goes_through_stdin_and_is_masked_everywhere(ready: Cli) -> None:
    as_argument = ready("settings", "set", "smtp.password", SECRET)
    assert_one_error_line(as_argument, 2, "--value-stdin")
    assert ready.ok("settings", "show", "--json").json["smtp.password"] == ""

    stored = ready.ok("settings", "set", "smtp.password", "--value-stdin", stdin=SECRET + "\n")
    assert SECRET not in stored.out
    assert "smtp.password = ********" in stored.out

    shown = ready.ok("settings", "show").out
    assert SECRET not in shown
    assert any(line.split() == ["smtp.password", "********"] for line in shown.splitlines())
    assert ready.ok("settings", "show", "--json").json["smtp.password"] == "********"
    assert SECRET not in ready.ok("audit", "list", "--json").out
    assert SECRET not in ready.ok("audit", "list").out

    # Encrypted at rest, and it round-trips through the key.
    engine = create_engine(ready.db_url)
    try:
        with engine.connect() as connection:
            raw = connection.execute(
                text("SELECT value FROM server_settings WHERE key = 'smtp.password'")
            ).scalar_one()
    finally:
        engine.dispose()
    assert raw.startswith("enc:")
    assert SECRET not in raw
    context = ready.context()
    try:
        from mfa_tui.core.services.settings_store import SettingsStore

        assert SettingsStore(context).load()["smtp.password"] == SECRET
    finally:
        context.close()


# audit --------------------------------------------------------------------------------------------


def test_cli_changes_are_audited_as_cli_and_the_os_user(ready: Cli) -> None:
    ready.ok("users", "add", "bob")
    ready.ok("users", "set-mfa", "bob", "--type", "totp", "--configure-later")
    events = ready.ok("audit", "list", "--json").json
    actor = f"cli:{getpass.getuser()}"
    assert [(e["actor"], e["action"], e["target"]) for e in events[:3]] == [
        (actor, "mfa.set_type", "bob"),
        (actor, "user.create", "bob"),
        (actor, "user.create", "root"),
    ]
    assert [e["seq"] for e in events] == sorted((e["seq"] for e in events), reverse=True)
    assert set(events[0]) == {"seq", "at", "actor", "action", "target", "details"}

    lines = ready.ok("audit", "list").out.splitlines()
    assert len(lines) == len(events)
    assert actor in lines[0] and "mfa.set_type" in lines[0] and "bob" in lines[0]

    assert len(ready.ok("audit", "list", "--json", "--limit", "1").json) == 1
    searched = ready.ok("audit", "list", "--json", "--search", "SET_TYPE").json
    assert [e["action"] for e in searched] == ["mfa.set_type"]


def test_audit_csv_never_starts_a_cell_with_a_formula(ready: Cli) -> None:
    context = ready.context()
    try:
        with context.db.write() as session:
            context.audit.append(
                session,
                AuditEntry('=HYPERLINK("http://x")', "+cmd", "@SUM(A1)", {"n": 1}),
                context.clock.now(),
            )
            context.audit.append(
                session, AuditEntry("-2+3", "test", "\x1b[31mred"), context.clock.now()
            )
    finally:
        context.close()

    rows = list(csv.reader(io.StringIO(ready.ok("audit", "list", "--csv").out)))
    assert rows[0] == ["seq", "at", "actor", "action", "target", "details"]
    assert rows[2][2:5] == ['\'=HYPERLINK("http://x")', "'+cmd", "'@SUM(A1)"]
    assert rows[1][2] == "'-2+3"
    assert rows[1][4] == "\\x1b[31mred"  # escape characters shown, never sent raw
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@")), row
    # The terminal view escapes control characters too.
    assert "\x1b" not in ready.ok("audit", "list").out
    assert ready.ok("audit", "list", "--verify").code == 0
    # The copy taken for a file is in the log itself (a listing on the terminal is not).
    ready.ok("audit", "list", "--csv", "--search", "test", "--limit", "5")
    exports = [e for e in ready.ok("audit", "list", "--json").json if e["action"] == "audit.export"]
    assert [(e["details"], e["target"]) for e in exports] == [
        ({"events": 1, "filter": "test"}, None),
        ({"events": len(rows) - 1}, None),
    ]
    assert all(e["actor"].startswith("cli:") for e in exports)


def test_audit_verify_names_the_first_tampered_row(ready: Cli) -> None:
    ready.ok("users", "add", "bob")
    ready.ok("users", "add", "carol")

    intact = ready.ok("audit", "list", "--verify")
    assert "head: 3 events" in intact.out
    assert "intact" in intact.out

    engine = create_engine(ready.db_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE audit_events SET target = 'mallory' WHERE seq = 2"))
    finally:
        engine.dispose()

    broken = ready("audit", "list", "--verify")
    line = assert_one_error_line(broken, 1, "row 2")
    assert "broken" in line
    assert "head: 3 events" in broken.out
