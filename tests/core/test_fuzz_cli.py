"""Hostile command lines: ``mfa_tui.cli.main`` in-process with hypothesis-generated arguments.

Whatever the arguments, the exit code is 0, 1 or 2 (3 is for a database or key problem, which no
argument should cause; the catch-all for unexpected errors also exits 3, so it counts as a bug),
a failure prints exactly one line on stderr and never a traceback, and nothing printed carries a
raw control or escape character.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mfa_tui.core.access import Actor
from mfa_tui.core.config import Config
from mfa_tui.core.context import open_context
from mfa_tui.core.services.mfa import MfaService
from mfa_tui.core.services.users import UserService
from mfa_tui.core.settings import SETTING_SPECS
from tests.cli.conftest import Cli, Result
from tests.helpers.fuzz import fuzz

EXAMPLES = 300
FUZZ = fuzz(EXAMPLES)

# An argv can hold anything but NUL, including lone surrogates (undecodable bytes, surrogateescape).
hostile = st.text(
    alphabet=st.one_of(
        st.characters(exclude_characters="\x00"),
        st.sampled_from(list("\x1b\x07\x9b\u202e\udcff\udc80-=@ \n\t")),
    ),
    max_size=30,
)
names = st.one_of(st.sampled_from(["alice", "root", "ALICE", "nobody"]), hostile)
options = st.sampled_from(
    ["--json", "--csv", "--verify", "--help", "--limit", "--search", "--type", "--role", "--"]
)


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    choice = draw(st.integers(0, 7))
    text = draw(hostile)
    if choice == 0:
        return [
            "users",
            "add",
            draw(names),
            "--display-name",
            text,
            "--email",
            draw(st.one_of(hostile, st.just("a@example.com"))),
            "--phone",
            draw(st.one_of(hostile, st.just("+14155550123"))),
            "--role",
            draw(st.one_of(hostile, st.sampled_from(["user", "helpdesk", "admin"]))),
        ]
    if choice == 1:
        return ["users", "list", "--search", text, "--limit", draw(hostile)]
    if choice == 2:
        mfa = draw(st.one_of(hostile, st.sampled_from(["totp", "email", "none", "duo"])))
        return ["users", "set-mfa", draw(names), "--type", mfa]
    if choice == 3:
        keys = st.sampled_from([spec.key for spec in SETTING_SPECS])
        return ["settings", "set", draw(st.one_of(keys, hostile)), text]
    if choice == 4:
        return ["audit", "list", "--search", text, *draw(st.lists(options, max_size=2))]
    if choice == 5:
        return ["verify", draw(names)]
    if choice == 6:
        return ["users", draw(st.sampled_from(["unlock", "reset-mfa", "delete"])), draw(names)]
    # Anything after a command that ends by itself (not the console, serve or login, which wait).
    group = draw(st.sampled_from(["users", "audit", "settings", "verify", "db"]))
    return [group, *draw(st.lists(st.one_of(options, hostile, st.sampled_from(["list", "add"]))))]


def assert_well_behaved(args: list[str], result: Result) -> None:
    assert result.code in (0, 1, 2), (args, result)
    assert "Traceback" not in result.err and "Unexpected error" not in result.err, (args, result)
    if result.code != 0:
        assert len(result.err_lines) == 1 and result.err.startswith("mfa-tui: "), (args, result)
    for printed in (result.out, result.err):
        lines = printed.replace("\r\n", "\n")  # CSV rows end in CRLF (RFC 4180)
        raw = [c for c in lines if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) < 0xA0]
        assert not raw, (args, result)


def test_any_command_line_exits_cleanly(
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key_file = tmp_path / "secret.key"
    context = open_context(Config(sqlite_url, key_file))
    try:
        UserService(context).create(Actor.cli(), "alice", email="alice@example.com")
        MfaService(context).set_type(Actor.cli(), "alice", "totp", configure_later=True)
    finally:
        context.close()
    for name in ("MFA_TUI_DATABASE_URL", "MFA_TUI_KEY_FILE", "MFA_TUI_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    cli = Cli(sqlite_url, key_file, monkeypatch, capsys)
    codes: dict[int, int] = {}

    @FUZZ
    @given(args=command_lines(), stdin=hostile)
    def check(args: list[str], stdin: str) -> None:
        result = cli(*args, stdin=stdin)
        codes[result.code] = codes.get(result.code, 0) + 1
        assert_well_behaved(args, result)

    check()
    print(
        f"\ncli fuzz: {sum(codes.values())} command lines, exit codes {dict(sorted(codes.items()))}"
    )
