"""UserService and CSV import on both databases: uniqueness, validation, search, paging, locking, access."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from mfa_tui.core.access import Actor
from mfa_tui.core.audit import AuditRecord, list_events
from mfa_tui.core.context import Context
from mfa_tui.core.errors import ConflictError, InputError, NotFound, PermissionDenied
from mfa_tui.core.models import Role
from mfa_tui.core.services.users import (
    GeneralFields,
    MatchCount,
    UserPager,
    UserQuery,
    UserService,
    UserView,
    import_users,
)


@pytest.fixture
def users(ctx: Context) -> UserService:
    return UserService(ctx)


def _events(ctx: Context, action: str) -> list[AuditRecord]:
    with ctx.db.read() as session:
        return [e for e in list_events(session, text=action) if e.action == action]


def _names(views: list[UserView]) -> list[str]:
    return [view.username for view in views]


# Creating ----------------------------------------------------------------------------------------


def test_create_stores_the_fields_and_audits(
    ctx: Context, users: UserService, cli_actor: Actor
) -> None:
    created = users.create(
        cli_actor,
        "  Alice ",
        display_name="Alice Liddell",
        email="alice@example.com",
        phone="+44 20 7946 0958",
        role="HELPDESK",
    )

    alice = users.get("alice")
    assert alice == created
    assert (alice.username, alice.display_name, alice.email, alice.phone, alice.role) == (
        "Alice",
        "Alice Liddell",
        "alice@example.com",
        "+442079460958",
        "helpdesk",
    )
    assert (alice.enabled, alice.locked, alice.has_password) == (True, False, False)
    assert (alice.mfa_type, alice.mfa_status) == ("none", "none")
    [event] = _events(ctx, "user.create")
    assert (event.actor, event.target) == (cli_actor.name, "Alice")


def test_usernames_are_unique_ignoring_case(users: UserService, cli_actor: Actor) -> None:
    users.create(cli_actor, "Alice")

    with pytest.raises(InputError) as refused:
        users.create(cli_actor, "alice")

    assert "already exists" in str(refused.value)
    assert users.count() == 1


def test_a_password_is_hashed_and_checked_for_strength(
    ctx: Context, users: UserService, cli_actor: Actor
) -> None:
    with pytest.raises(InputError, match="too short"):
        users.create(cli_actor, "dave", password="short")
    assert users.count() == 0
    view = users.create(cli_actor, "dave", password="correct horse battery")
    assert view.has_password
    with ctx.db.read() as session:
        from sqlmodel import select

        from mfa_tui.core.models import User

        stored = session.exec(select(User.password_hash)).one()
    assert stored is not None and stored.startswith("$argon2id$")


BAD_FIELDS = [
    ({"username": ""}, "The username is empty"),
    ({"username": "bad name"}, "is not a valid username"),
    ({"username": "-dash"}, "is not a valid username"),
    ({"username": "x" * 65}, "is not a valid username"),
    ({"email": "not-an-email"}, "is not a valid email address"),
    ({"email": "a@b"}, "is not a valid email address"),
    ({"phone": "12345"}, "is not a phone number in international form"),
    ({"phone": "call me"}, "is not a phone number in international form"),
    ({"role": "root"}, "is not a role"),
    ({"display_name": "evil\x1b[2J"}, "control characters"),
]


def test_validation_messages(users: UserService, cli_actor: Actor) -> None:
    for fields, message in BAD_FIELDS:
        values = {"username": "valid"} | fields
        name = values.pop("username")

        with pytest.raises(InputError) as refused:
            users.create(cli_actor, name, **values)  # type: ignore[arg-type]

        assert message in str(refused.value), fields
        assert str(refused.value).endswith("."), fields
    assert users.count() == 0


# Listing and searching ---------------------------------------------------------------------------


@pytest.fixture
def crowd(users: UserService, cli_actor: Actor) -> UserService:
    users.create(cli_actor, "carol", display_name="Carol Danvers", email="carol@example.org")
    users.create(cli_actor, "Dave", email="dave@EXAMPLE.com")
    users.create(cli_actor, "alice", display_name="100% Alice")
    users.create(cli_actor, "Bob_Smith", display_name="Bob")
    users.create(cli_actor, "bobXsmith", display_name="100 Bob")
    return users


def test_list_orders_by_username_ignoring_case(crowd: UserService) -> None:
    assert _names(crowd.list()) == ["alice", "Bob_Smith", "bobXsmith", "carol", "Dave"]


SEARCHES = [
    ("ALI", ["alice"]),  # username, any case
    ("danvers", ["carol"]),  # display name
    ("example.COM", ["Dave"]),  # email, any case
    ("example", ["carol", "Dave"]),
    ("b_s", ["Bob_Smith"]),  # '_' is a literal underscore, not "any character"
    ("0%", ["alice"]),  # '%' is a literal percent sign, not "anything"
    ("%", ["alice"]),
    ("_", ["Bob_Smith"]),
    ("\\", []),  # the LIKE escape character itself is literal too
    ("  bob  ", ["Bob_Smith", "bobXsmith"]),
    ("nobody", []),
]


def test_search(crowd: UserService) -> None:
    results = {search: _names(crowd.list(search=search)) for search, _ in SEARCHES}
    assert results == dict(SEARCHES)


def test_keyset_paging(crowd: UserService) -> None:
    pages: list[list[str]] = []
    after: str | None = None
    while True:
        page = crowd.list(limit=2, after=after)
        if not page:
            break
        pages.append(_names(page))
        after = page[-1].username.casefold()

    assert pages == [["alice", "Bob_Smith"], ["bobXsmith", "carol"], ["Dave"]]
    assert _names(crowd.list(search="bob", limit=1, after="bob_smith")) == ["bobXsmith"]


# Editing -----------------------------------------------------------------------------------------


def test_update_general_with_optimistic_locking(
    ctx: Context, users: UserService, cli_actor: Actor
) -> None:
    bob = users.create(cli_actor, "bob", email="bob@example.com")

    first = users.update_general(
        cli_actor, bob.id, bob.version, GeneralFields(display_name="Bob A")
    )
    assert (first.display_name, first.version) == ("Bob A", bob.version + 1)

    # The second editor opened the form before the first one saved.
    with pytest.raises(ConflictError) as refused:
        users.update_general(cli_actor, bob.id, bob.version, GeneralFields(phone="+14155550123"))
    assert "reload" in str(refused.value)
    # Same values as now, but still from a stale form: refused too.
    with pytest.raises(ConflictError):
        users.update_general(cli_actor, bob.id, bob.version, GeneralFields(display_name="Bob A"))

    now = users.get("bob")
    assert (now.display_name, now.phone, now.email) == ("Bob A", None, "bob@example.com")
    [event] = _events(ctx, "user.update")
    assert event.details == {"before": {"display_name": None}, "after": {"display_name": "Bob A"}}

    cleared = users.update_general(
        cli_actor, bob.id, now.version, GeneralFields(username="Robert", clear=frozenset({"email"}))
    )
    assert (cleared.username, cleared.email) == ("Robert", None)
    assert users.get("robert").id == bob.id
    with pytest.raises(NotFound):
        users.get("bob")


def test_renaming_onto_another_user_is_refused(users: UserService, cli_actor: Actor) -> None:
    users.create(cli_actor, "alice")
    bob = users.create(cli_actor, "bob")
    with pytest.raises(InputError, match="already exists"):
        users.update_general(cli_actor, bob.id, bob.version, GeneralFields(username="ALICE"))
    assert users.get("bob").version == bob.version


def test_the_last_enabled_admin_stays(ctx: Context, users: UserService, cli_actor: Actor) -> None:
    root = users.create(cli_actor, "root", role=Role.ADMIN)
    users.create(cli_actor, "sleeper", role=Role.ADMIN)
    sleeper = users.get("sleeper")
    users.update_general(cli_actor, sleeper.id, sleeper.version, GeneralFields(enabled=False))

    for fields in (GeneralFields(role="user"), GeneralFields(enabled=False)):
        with pytest.raises(InputError, match="last enabled administrator"):
            users.update_general(cli_actor, root.id, root.version, fields)
    with pytest.raises(InputError, match="last enabled administrator"):
        users.delete(cli_actor, "root")
    # A disabled administrator may go.
    users.delete(cli_actor, "sleeper")

    after = users.get("root")
    assert (after.role, after.enabled, after.version) == ("admin", True, root.version)

    # With a second enabled administrator, the first can step down.
    users.create(cli_actor, "second", role=Role.ADMIN)
    demoted = users.update_general(cli_actor, root.id, root.version, GeneralFields(role="user"))
    assert demoted.role == "user"
    assert len(_events(ctx, "user.delete")) == 1


def _at_once(*actions: Callable[[], object]) -> list[str]:
    """Run the actions in threads released together: "done", "refused" (last admin) or the error."""
    start = threading.Barrier(len(actions))
    outcomes: list[str] = []

    def run(action: Callable[[], object]) -> None:
        start.wait(10)
        try:
            action()
            outcomes.append("done")
        except InputError as refused:
            outcomes.append("refused" if "last enabled administrator" in str(refused) else "?")
        except Exception as error:  # reported by the caller's assertion
            outcomes.append(repr(error))

    threads = [threading.Thread(target=run, args=(action,)) for action in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return sorted(outcomes)


def test_two_staff_removing_the_last_two_admins_at_once_leave_one(
    users: UserService, cli_actor: Actor
) -> None:
    """Each sees the other administrator; only one of them may go (no write skew)."""

    def removal(kind: str, view: UserView) -> Callable[[], object]:
        if kind == "delete":
            return lambda: users.delete(cli_actor, view.username)
        fields = GeneralFields(role="user") if kind == "demote" else GeneralFields(enabled=False)
        return lambda: users.update_general(cli_actor, view.id, view.version, fields)

    for first, second in (("demote", "demote"), ("disable", "delete"), ("delete", "demote")):
        one = users.create(cli_actor, f"{first}-1-{second}", role=Role.ADMIN)
        two = users.create(cli_actor, f"{second}-2-{first}", role=Role.ADMIN)
        for view in users.list():  # leave exactly these two administrators
            if view.role == Role.ADMIN and view.enabled and view.id not in (one.id, two.id):
                users.update_general(cli_actor, view.id, view.version, GeneralFields(role="user"))

        outcomes = _at_once(removal(first, one), removal(second, two))

        assert outcomes == ["done", "refused"], (first, second)
        admins = [v for v in users.list() if v.role == Role.ADMIN and v.enabled]
        assert len(admins) == 1 and admins[0].id in (one.id, two.id)


def test_helpdesk_cannot_edit_an_administrator(
    ctx: Context, users: UserService, cli_actor: Actor
) -> None:
    root = users.create(cli_actor, "root", role=Role.ADMIN)
    agent_view = users.create(cli_actor, "agent", role=Role.HELPDESK)
    bob = users.create(cli_actor, "bob")
    agent = Actor(name="agent", role=Role.HELPDESK, user_id=agent_view.id)

    with pytest.raises(PermissionDenied):
        users.update_general(agent, root.id, root.version, GeneralFields(display_name="Pwned"))
    # A plain user's General fields, yes; their role, no.
    users.update_general(agent, bob.id, bob.version, GeneralFields(display_name="Bob"))
    bob = users.get("bob")
    with pytest.raises(PermissionDenied):
        users.update_general(agent, bob.id, bob.version, GeneralFields(role="admin"))
    with pytest.raises(PermissionDenied):
        users.create(agent, "newbie")
    with pytest.raises(PermissionDenied):
        users.delete(agent, "bob")

    assert users.get("root").display_name is None
    assert (users.get("bob").display_name, users.get("bob").role) == ("Bob", "user")
    denied = _events(ctx, "denied")
    assert [(e.actor, e.target) for e in reversed(denied)] == [
        ("agent", "root"),
        ("agent", "bob"),
        ("agent", None),
        ("agent", "bob"),
    ]
    with ctx.db.read() as session:
        assert ctx.audit.verify(session).ok


def test_an_admin_cannot_change_their_own_role(users: UserService, cli_actor: Actor) -> None:
    root = users.create(cli_actor, "root", role=Role.ADMIN)
    users.create(cli_actor, "other", role=Role.ADMIN)
    me = Actor(name="root", role=Role.ADMIN, user_id=root.id)
    with pytest.raises(PermissionDenied):
        users.update_general(me, root.id, root.version, GeneralFields(role="user"))
    # Their own display name is fine.
    users.update_general(me, root.id, root.version, GeneralFields(display_name="The Root"))


# Importing ---------------------------------------------------------------------------------------

HEADER = "username,display_name,email,phone,role,mfa_type,configure_later\n"


def _csv(tmp_path: Path, body: str, name: str = "users.csv") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def test_import_a_good_file(
    ctx: Context, users: UserService, cli_actor: Actor, tmp_path: Path
) -> None:
    path = _csv(
        tmp_path,
        HEADER
        + "ann,Ann Lee,ann@example.com,+14155550100,user,totp,true\n"
        + "ben,,,,helpdesk,,\n"
        + "\n"
        + "Cid,Cid,cid@example.com,,admin,totp,\n",
    )

    report = import_users(ctx, cli_actor, path, skip_invalid=False)

    assert (report.imported, report.problems) == (3, [])
    views = {v.username: v for v in users.list()}
    assert sorted(views) == ["Cid", "ann", "ben"]
    assert all(not v.has_password for v in views.values())
    assert (views["ann"].mfa_type, views["ann"].mfa_status) == ("totp", "pending")
    assert (views["Cid"].mfa_type, views["Cid"].mfa_status, views["Cid"].role) == (
        "totp",
        "pending",
        "admin",
    )
    assert (views["ben"].mfa_type, views["ben"].mfa_status, views["ben"].role) == (
        "none",
        "none",
        "helpdesk",
    )
    assert views["ann"].mfa_status_since == ctx.clock.now()
    assert sorted(e.target for e in _events(ctx, "user.create")) == ["Cid", "ann", "ben"]
    with ctx.db.read() as session:
        assert ctx.audit.verify(session).ok
    # The search index took them in (the import fills it in one statement, not row by row).
    assert [v.username for v in UserPager(ctx, Actor.cli()).page(UserQuery("Lee"), 0, 10, 0)] == [
        "ann"
    ]
    users.create(cli_actor, "dan", display_name="Dan Lee")  # and the row trigger is back
    assert UserPager(ctx, Actor.cli()).count(UserQuery("lee")) == MatchCount(2, True)


def test_import_with_bad_lines_imports_nothing_and_lists_every_bad_line(
    ctx: Context, users: UserService, cli_actor: Actor, tmp_path: Path
) -> None:
    users.create(cli_actor, "Existing")
    path = _csv(
        tmp_path,
        HEADER
        + "good1,,,,,,\n"  # 2
        + "mail,,not-an-email,,,,\n"  # 3
        + "roles,,,,superuser,,\n"  # 4
        + "GOOD1,,,,,,\n"  # 5: duplicate of line 2
        + "existing,,,,,,\n"  # 6: already in the database
        + "texter,,,,,sms,true\n"  # 7: not supported on this server
        + "now,,,,,totp,false\n"  # 8: a file cannot configure now
        + "good2,,,,,totp,\n"  # 9
        + "weird,,,,,carrier-pigeon,\n",  # 10: not a type at all
    )

    report = import_users(ctx, cli_actor, path, skip_invalid=False)

    assert report.imported == 0
    assert users.count() == 1
    assert [number for number, _ in report.problems] == [3, 4, 5, 6, 7, 8, 10]
    problems = dict(report.problems)
    assert "not a valid email address" in problems[3]
    assert "not a role" in problems[4]
    assert "line 2" in problems[5]
    assert "already exists" in problems[6]
    assert "not supported" in problems[7]
    assert "configure_later" in problems[8]
    assert "not an MFA type" in problems[10]
    assert [e.target for e in _events(ctx, "user.create")] == ["Existing"]

    skipped = import_users(ctx, cli_actor, path, skip_invalid=True)

    assert skipped.imported == 2
    assert [number for number, _ in skipped.problems] == [3, 4, 5, 6, 7, 8, 10]
    assert _names(users.list()) == ["Existing", "good1", "good2"]
    assert users.get("good2").mfa_status == "pending"


def test_import_refuses_files_it_cannot_use(ctx: Context, cli_actor: Actor, tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(b"username,display_name\nrene,Ren\xe9\n")
    cases = {
        tmp_path / "missing.csv": "does not exist",
        tmp_path: "is a folder",
        latin1: "is not UTF-8",
        _csv(tmp_path, "username,shoe_size\nann,42\n", "a.csv"): "Unknown column 'shoe_size'",
        _csv(
            tmp_path, "email,display_name\nann@example.com,Ann\n", "b.csv"
        ): "no 'username' column",
        _csv(tmp_path, "", "c.csv"): "is empty",
        _csv(tmp_path, "\n\n", "d.csv"): "is empty",
    }
    for path, message in cases.items():
        with pytest.raises(InputError) as refused:
            import_users(ctx, cli_actor, path, skip_invalid=True)
        sentence = str(refused.value)
        assert message in sentence, path
        assert str(path) in sentence
        assert "\n" not in sentence and sentence.endswith(".")
    assert UserService(ctx).count() == 0


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="root reads files whatever their mode, so an unreadable file cannot be made",
)
def test_import_refuses_an_unreadable_file(ctx: Context, cli_actor: Actor, tmp_path: Path) -> None:
    path = _csv(tmp_path, "username\nann\n")
    path.chmod(0)
    try:
        with pytest.raises(InputError, match="Cannot read"):
            import_users(ctx, cli_actor, path, skip_invalid=False)
    finally:
        path.chmod(0o600)


def test_import_needs_an_administrator(
    ctx: Context, users: UserService, cli_actor: Actor, tmp_path: Path
) -> None:
    agent_view = users.create(cli_actor, "agent", role=Role.HELPDESK)
    agent = Actor(name="agent", role=Role.HELPDESK, user_id=agent_view.id)
    path = _csv(tmp_path, "username\nann\n")
    with pytest.raises(PermissionDenied):
        import_users(ctx, agent, path, skip_invalid=False)
    assert users.count() == 1
    assert len(_events(ctx, "denied")) == 1


def test_own_record_is_the_signed_in_actor_and_nobody_else(
    users: UserService, cli_actor: Actor
) -> None:
    """Preferences reads through own_record: it takes no name or id, so it cannot be pointed at
    another user's record."""
    alice = users.create(cli_actor, "alice")
    users.create(cli_actor, "bob")
    as_alice = Actor(name="alice", role=Role.USER, user_id=alice.id)
    assert users.own_record(as_alice).username == "alice"
    with pytest.raises(NotFound, match="Sign in"):
        users.own_record(cli_actor)  # the CLI has no record of its own
