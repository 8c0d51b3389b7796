"""init, demo and the ``users`` commands, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pyotp
import pytest
from sqlmodel import select

from mfa_tui.core.models import User
from mfa_tui.core.passwords import verify_password
from tests.cli.conftest import (
    ADMIN_PASSWORD,
    Cli,
    Process,
    assert_one_error_line,
    configure_totp,
    wrong_code,
)

JSON_KEYS = {
    "username",
    "display_name",
    "email",
    "phone",
    "role",
    "enabled",
    "locked",
    "mfa_type",
    "mfa_status",
}


def password_hash(cli: Cli, username: str) -> str | None:
    context = cli.context()
    try:
        with context.db.read() as session:
            user = session.exec(select(User).where(User.username == username)).one()
            return user.password_hash
    finally:
        context.close()


# init and demo -----------------------------------------------------------------------------------


def test_init_creates_the_first_administrator_once(cli: Cli) -> None:
    created = cli("init", "--admin", "root", "--password-stdin", stdin=ADMIN_PASSWORD + "\n")
    assert created.code == 0, created
    assert "Created administrator root" in created.out
    root = cli.users()["root"]
    assert root["role"] == "admin"
    assert verify_password(password_hash(cli, "root"), ADMIN_PASSWORD)

    again = cli("init", "--admin", "other", "--password-stdin", stdin=ADMIN_PASSWORD + "\n")
    assert_one_error_line(again, 2, "already has users")
    assert set(cli.users()) == {"root"}


@pytest.mark.parametrize(
    ("password", "fragment"),
    [("short", "too short"), ("aaaaaaaaaaaa", "too few"), ("", "empty")],
)
def test_init_refuses_a_weak_or_missing_password(
    sqlite_cli: Cli, password: str, fragment: str
) -> None:
    stdin = password + "\n" if password else ""
    result = sqlite_cli("init", "--admin", "root", "--password-stdin", stdin=stdin)
    assert_one_error_line(result, 2, fragment)
    assert sqlite_cli.users() == {}


def test_init_without_a_terminal_asks_for_password_stdin(sqlite_cli: Cli) -> None:
    assert_one_error_line(sqlite_cli("init", "--admin", "root"), 2, "--password-stdin")


def test_demo_seeds_an_empty_database_only(cli: Cli) -> None:
    seeded = cli("demo", "--users", "50")
    assert seeded.code == 0, seeded
    logins = [line.split() for line in seeded.out.splitlines() if line.startswith("  ")]
    demo_accounts = {fields[0]: fields for fields in logins if fields[0] != "…"}
    assert set(demo_accounts) == {"admin", "helpdesk", "alice", "bob"}
    users = cli.users()
    assert len(users) == 4 + 50
    assert users["admin"]["role"] == "admin"
    assert users["alice"]["mfa_type"] == "totp"
    assert users["alice"]["mfa_status"] == "pending"
    # The printed password is the real one.
    assert verify_password(password_hash(cli, "admin"), demo_accounts["admin"][1])

    again = cli("demo")
    assert_one_error_line(again, 2, "empty database")
    assert len(cli.users()) == 54


# users add / list ---------------------------------------------------------------------------------


def test_users_list_json_is_ordered_by_username_with_the_contract_keys(ready: Cli) -> None:
    ready.ok("users", "add", "Zoe", "--email", "zoe@example.com", "--display-name", "Zoe Z")
    ready.ok("users", "add", "adam", "--phone", "+1 415 555 0123", "--role", "helpdesk")
    ready.ok("users", "add", "bob")

    rows = ready.ok("users", "list", "--json").json
    assert isinstance(rows, list)
    assert [row["username"] for row in rows] == ["adam", "bob", "root", "Zoe"]
    for row in rows:
        assert set(row) == JSON_KEYS
        assert row["enabled"] is True
        assert row["locked"] is False
    by_name = {row["username"]: row for row in rows}
    assert by_name["bob"] == {
        "username": "bob",
        "display_name": None,
        "email": None,
        "phone": None,
        "role": "user",
        "enabled": True,
        "locked": False,
        "mfa_type": "none",
        "mfa_status": "none",
    }
    assert by_name["adam"]["phone"] == "+14155550123"
    assert by_name["adam"]["role"] == "helpdesk"
    assert by_name["Zoe"]["email"] == "zoe@example.com"
    assert by_name["Zoe"]["display_name"] == "Zoe Z"

    table = ready.ok("users", "list").out.splitlines()
    assert table[0].split()[:2] == ["USERNAME", "NAME"]
    assert [line.split()[0] for line in table[1:]] == ["adam", "bob", "root", "Zoe"]


def test_users_add_refuses_a_duplicate_in_any_case(ready: Cli) -> None:
    assert_one_error_line(ready("users", "add", "ROOT"), 2, "already exists")


def test_users_list_search_and_limit(ready: Cli) -> None:
    ready.ok("users", "add", "adam", "--display-name", "Adam Smith")
    ready.ok("users", "add", "grace", "--display-name", "Grace Hopper")
    ready.ok("users", "add", "gh2", "--email", "gh@NAVY.example")
    ready.ok("users", "add", "under_score")

    def search(text: str, *extra: str) -> list[str]:
        rows = ready.ok("users", "list", "--json", "--search", text, *extra).json
        return [row["username"] for row in rows]

    assert search("ADA") == ["adam"]  # username, any case
    assert search("hop") == ["grace"]  # display name
    assert search("navy") == ["gh2"]  # email
    assert search("smith") == ["adam"]
    assert search("g") == ["gh2", "grace"]
    assert search("nobody-matches") == []
    assert search("_") == ["under_score"]  # a LIKE wildcard is taken literally
    assert search("%") == []

    limited = ready.ok("users", "list", "--json", "--limit", "2").json
    assert [row["username"] for row in limited] == ["adam", "gh2"]
    assert search("a", "--limit", "1") == ["adam"]


def test_users_list_shows_mfa_as_it_takes_effect_under_the_policy(ready: Cli) -> None:
    ready.ok("users", "add", "plain")
    ready.ok("users", "add", "later")
    ready.ok("users", "set-mfa", "later", "--type", "totp", "--configure-later")

    ready.ok("settings", "set", "mfa.usage", "required")
    users = ready.users()
    assert (users["plain"]["mfa_type"], users["plain"]["mfa_status"]) == ("totp", "pending")
    assert (users["later"]["mfa_type"], users["later"]["mfa_status"]) == ("totp", "pending")

    ready.ok("settings", "set", "mfa.usage", "skipped")
    for row in ready.users().values():
        assert (row["mfa_type"], row["mfa_status"]) == ("none", "none")

    ready.ok("settings", "set", "mfa.usage", "optional")
    users = ready.users()
    assert (users["plain"]["mfa_type"], users["plain"]["mfa_status"]) == ("none", "none")
    assert (users["later"]["mfa_type"], users["later"]["mfa_status"]) == ("totp", "pending")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--email", "not-an-email"), "not a valid email"),
        (("--phone", "12"), "international form"),
        (("--role", "boss"), "not a role"),
    ],
)
def test_users_add_refuses_bad_fields(
    sqlite_ready: Cli, args: tuple[str, ...], fragment: str
) -> None:
    assert_one_error_line(sqlite_ready("users", "add", "eve", *args), 2, fragment)
    assert "eve" not in sqlite_ready.users()


def test_users_add_refuses_a_bad_username(sqlite_ready: Cli) -> None:
    assert_one_error_line(sqlite_ready("users", "add", "-not valid"), 2)
    assert_one_error_line(sqlite_ready("users", "add", "has space"), 2, "not a valid username")


# set-password, delete -----------------------------------------------------------------------------


def test_users_set_password(ready: Cli) -> None:
    ready.ok("users", "add", "bob")
    assert password_hash(ready, "bob") is None
    ready.ok("users", "set-password", "bob", "--password-stdin", stdin="Blue-Elephant-42\n")
    assert verify_password(password_hash(ready, "bob"), "Blue-Elephant-42")

    weak = ready("users", "set-password", "bob", "--password-stdin", stdin="bob\n")
    assert_one_error_line(weak, 2, "too short")
    unknown = ready(
        "users", "set-password", "nobody", "--password-stdin", stdin="Blue-Elephant-42\n"
    )
    assert_one_error_line(unknown, 2, "no user 'nobody'")
    assert verify_password(password_hash(ready, "bob"), "Blue-Elephant-42")


def test_users_delete_needs_yes_and_keeps_the_last_admin(ready: Cli) -> None:
    ready.ok("users", "add", "bob")
    assert_one_error_line(ready("users", "delete", "bob"), 2, "--yes")
    assert "bob" in ready.users()
    ready.ok("users", "delete", "bob", "--yes")
    assert "bob" not in ready.users()

    assert_one_error_line(
        ready("users", "delete", "root", "--yes"), 2, "last enabled administrator"
    )
    assert "root" in ready.users()
    assert_one_error_line(ready("users", "delete", "bob", "--yes"), 2, "no user 'bob'")

    ready.ok("users", "add", "second", "--role", "admin")
    ready.ok("users", "delete", "root", "--yes")
    assert set(ready.users()) == {"second"}


# import -------------------------------------------------------------------------------------------


def write_csv(tmp_path: Path, text: str, name: str = "users.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


MIXED_CSV = (
    "username,display_name,email,phone,role,mfa_type,configure_later\n"
    "ann,Ann A,ann@example.com,+14155550100,user,totp,true\n"  # 2 good
    "bad user,,,,,,\n"  # 3 bad username
    "cid,,cid@example.com,,helpdesk,,\n"  # 4 good
    "dan,,not-an-email,,,,\n"  # 5 bad email
    "ANN,,,,,,\n"  # 6 duplicate of line 2
    "root,,,,,,\n"  # 7 exists in the database
    "eve,,,,,sms,true\n"  # 8 type not supported
)


def test_users_import_is_all_or_nothing(ready: Cli, tmp_path: Path) -> None:
    result = ready("users", "import", str(write_csv(tmp_path, MIXED_CSV)))
    assert result.code == 2, result
    assert "Traceback" not in result.err
    *listed, summary = result.err_lines
    assert [line.split(":")[0] for line in listed] == [
        "line 3",
        "line 5",
        "line 6",
        "line 7",
        "line 8",
    ]
    assert "not a valid username" in listed[0]
    assert "not a valid email" in listed[1]
    assert "line 2" in listed[2]
    assert "already exists" in listed[3]
    assert summary.startswith("mfa-tui: Nothing imported: 5 bad line(s)")
    assert set(ready.users()) == {"root"}


def test_users_import_skip_invalid_imports_the_good_lines(ready: Cli, tmp_path: Path) -> None:
    path = write_csv(tmp_path, MIXED_CSV)
    result = ready("users", "import", str(path), "--skip-invalid")
    assert result.code == 0, result
    assert "Imported 2 user(s), skipped 5 bad line(s)." in result.out
    assert [line.split(":")[0] for line in result.err_lines] == [
        "line 3",
        "line 5",
        "line 6",
        "line 7",
        "line 8",
    ]
    users = ready.users()
    assert set(users) == {"root", "ann", "cid"}
    ann = users["ann"]
    assert (ann["display_name"], ann["email"], ann["phone"]) == (
        "Ann A",
        "ann@example.com",
        "+14155550100",
    )
    assert (ann["mfa_type"], ann["mfa_status"]) == ("totp", "pending")
    assert (users["cid"]["role"], users["cid"]["mfa_type"]) == ("helpdesk", "none")
    assert password_hash(ready, "ann") is None  # imported users have no password yet


def test_users_import_a_clean_file(ready: Cli, tmp_path: Path) -> None:
    path = write_csv(tmp_path, "username,email\nx1,x1@example.com\nx2,\n")
    result = ready("users", "import", str(path))
    assert result.code == 0, result
    assert result.err == ""
    assert "Imported 2 user(s)." in result.out
    assert {"x1", "x2"} <= set(ready.users())


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"\xff\xfeu\x00s\x00", "not UTF-8"),
        (b"", "is empty"),
        (b"name,email\nx,y\n", "Unknown column 'name'"),
        (b"email\nx@example.com\n", "no 'username' column"),
        (b'username,email\n"x,y\n', "not valid CSV"),
    ],
)
def test_users_import_refuses_an_unreadable_or_malformed_file(
    sqlite_ready: Cli, tmp_path: Path, content: bytes, fragment: str
) -> None:
    path = tmp_path / "broken.csv"
    path.write_bytes(content)
    assert_one_error_line(sqlite_ready("users", "import", str(path)), 2, fragment)
    assert set(sqlite_ready.users()) == {"root"}


def test_users_import_refuses_a_missing_file_or_a_folder(sqlite_ready: Cli, tmp_path: Path) -> None:
    assert_one_error_line(
        sqlite_ready("users", "import", str(tmp_path / "missing.csv")), 2, "does not exist"
    )
    assert_one_error_line(sqlite_ready("users", "import", str(tmp_path)), 2, "is a folder")


# set-mfa, reset-mfa, unlock -----------------------------------------------------------------------


def test_users_set_mfa_configure_later_and_none(ready: Cli) -> None:
    ready.ok("users", "add", "bob")
    result = ready.ok("users", "set-mfa", "bob", "--type", "TOTP", "--configure-later")
    assert "pending" in result.out
    bob = ready.users()["bob"]
    assert (bob["mfa_type"], bob["mfa_status"]) == ("totp", "pending")

    ready.ok("users", "set-mfa", "bob", "--type", "none")
    bob = ready.users()["bob"]
    assert (bob["mfa_type"], bob["mfa_status"]) == ("none", "none")


def test_users_set_mfa_refuses_bad_input(sqlite_ready: Cli) -> None:
    sqlite_ready.ok("users", "add", "bob")
    assert_one_error_line(
        sqlite_ready("users", "set-mfa", "bob", "--type", "carrier-pigeon", "--configure-later"),
        2,
        "not an MFA type",
    )
    assert_one_error_line(
        sqlite_ready("users", "set-mfa", "bob", "--type", "sms", "--configure-later"),
        2,
        "not supported",
    )
    assert_one_error_line(
        sqlite_ready("users", "set-mfa", "ghost", "--type", "totp", "--configure-later"),
        2,
        "no user 'ghost'",
    )
    assert_one_error_line(sqlite_ready("users", "set-mfa", "bob"), 2, "--type")
    bob = sqlite_ready.users()["bob"]
    assert (bob["mfa_type"], bob["mfa_status"]) == ("none", "none")


def code_for_printed_uri(printed: str) -> str:
    """What a person does: scan the printed otpauth URI and type the app's current code."""
    uri = printed.strip().splitlines()[-1]
    assert uri.startswith("otpauth://totp/mfa-tui:bob?")
    return pyotp.parse_uri(uri).now() + "\n"


def wrong_code_for_printed_uri(printed: str) -> str:
    return wrong_code(pyotp.parse_uri(printed.strip().splitlines()[-1]).secret) + "\n"


def test_users_set_mfa_now_reads_the_code_for_the_printed_secret(ready: Cli) -> None:
    ready.ok("users", "add", "bob")
    result = ready("users", "set-mfa", "bob", "--type", "totp", stdin=code_for_printed_uri)
    assert result.code == 0, result
    assert result.out.splitlines()[-1] == "bob: totp, configured."
    assert result.err == ""  # no terminal: no instructions, just the URI and the answer
    bob = ready.users()["bob"]
    assert (bob["mfa_type"], bob["mfa_status"]) == ("totp", "configured")
    actions = [e["action"] for e in ready.ok("audit", "list", "--json", "--limit", "3").json]
    assert actions == ["mfa.configured", "mfa.enrollment.code_verified", "mfa.enrollment.begin"]


def test_users_set_mfa_now_with_a_wrong_code_changes_nothing(ready: Cli) -> None:
    ready.ok("users", "add", "bob")
    result = ready("users", "set-mfa", "bob", "--type", "totp", stdin=wrong_code_for_printed_uri)
    assert_one_error_line(result, 1, "not accepted", "nothing was changed")
    bob = ready.users()["bob"]
    assert (bob["mfa_type"], bob["mfa_status"]) == ("none", "none")
    # And the refused secret is gone: setting up again starts from a new one.
    again = ready("users", "set-mfa", "bob", "--type", "totp", stdin=code_for_printed_uri)
    assert again.code == 0, again
    assert again.out.splitlines()[0] != result.out.splitlines()[0]


@pytest.mark.slow
def test_users_set_mfa_now_in_a_real_process(sqlite_ready: Cli, sqlite_process: Process) -> None:
    """Through real pipes, as a script would: read the URI line, then write the code."""
    sqlite_ready.ok("users", "add", "bob")
    child = sqlite_process.popen("users", "set-mfa", "bob", "--type", "totp")
    assert child.stdout is not None
    uri = child.stdout.readline()
    out, err = child.communicate(code_for_printed_uri(uri), timeout=60)
    assert child.returncode == 0, err
    assert err == ""
    assert out == "bob: totp, configured.\n"
    bob = sqlite_ready.users()["bob"]
    assert (bob["mfa_type"], bob["mfa_status"]) == ("totp", "configured")


def test_users_set_mfa_now_with_empty_stdin_changes_nothing(ready: Cli) -> None:
    ready.ok("users", "add", "bob")
    result = ready("users", "set-mfa", "bob", "--type", "totp")
    assert_one_error_line(result, 1, "not accepted")
    assert result.out.startswith("otpauth://totp/")
    bob = ready.users()["bob"]
    assert (bob["mfa_type"], bob["mfa_status"]) == ("none", "none")


def test_users_reset_mfa_makes_a_configured_user_enroll_again(ready: Cli) -> None:
    ready.ok("users", "add", "bob")
    configure_totp(ready, "bob")
    assert ready.users()["bob"]["mfa_status"] == "configured"
    result = ready.ok("users", "reset-mfa", "bob")
    assert "pending" in result.out
    bob = ready.users()["bob"]
    assert (bob["mfa_type"], bob["mfa_status"]) == ("totp", "pending")

    ready.ok("users", "add", "plain")
    assert_one_error_line(ready("users", "reset-mfa", "plain"), 2, "no MFA to reset")
    assert_one_error_line(ready("users", "reset-mfa", "ghost"), 2, "no user 'ghost'")


def test_users_unlock_a_user_who_is_not_locked(sqlite_ready: Cli) -> None:
    sqlite_ready.ok("users", "add", "bob")
    assert "was not locked" in sqlite_ready.ok("users", "unlock", "bob").out
    assert_one_error_line(sqlite_ready("users", "unlock", "ghost"), 2, "no user 'ghost'")
