"""The command line: parse, call core, print. Exit codes: 0 done, 1 refused, 2 bad input, 3 storage.

Every failure prints one line on stderr; a traceback only with --debug.
"""

from __future__ import annotations

import functools
import getpass
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from mfa_tui.core.config import Config
from mfa_tui.core.errors import InputError, MfaTuiError
from mfa_tui.core.text import details_text, printable
from mfa_tui.verify_protocol import CommandFailed as _Exit
from mfa_tui.verify_protocol import answer_for, pam_request
from mfa_tui.verify_protocol import read_stdin_line as _read_stdin_line

if TYPE_CHECKING:
    from mfa_tui.core.context import Context
    from mfa_tui.core.settings import SettingSpec

app = typer.Typer(
    name="mfa-tui",
    help="Administer and use per-user multi-factor authentication. With no command, opens the console.",
    no_args_is_help=False,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
users_app = typer.Typer(
    help="Find, add, import and change users and their MFA.", no_args_is_help=True
)
settings_app = typer.Typer(
    help="Show and change server settings (secrets are masked).", no_args_is_help=True
)
audit_app = typer.Typer(help="Read and check the audit log.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
keys_app = typer.Typer(help="The secret key.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(settings_app, name="settings")
app.add_typer(audit_app, name="audit")
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")


@dataclass
class State:
    config: Config
    debug: bool
    _context: Context | None = None

    def context(self) -> Context:
        if self._context is None:
            from mfa_tui.core.context import open_context

            self._context = open_context(self.config)
        return self._context

    def close(self) -> None:
        if self._context is not None:
            self._context.close()
            self._context = None


def _state(ctx: typer.Context) -> State:
    return ctx.find_root().obj  # type: ignore[no-any-return]


def _actor():  # type: ignore[no-untyped-def]
    from mfa_tui.core.access import Actor

    return Actor.cli()


def _fail(message: str, code: int = 2) -> NoReturn:
    raise _Exit(message, code)


def _read_password(password_stdin: bool, username: str) -> str:
    if password_stdin:
        return _read_stdin_line("the password")
    if not sys.stdin.isatty():
        _fail("No terminal to ask for the password: pass it with --password-stdin.")
    first = getpass.getpass(f"Password for {username}: ")
    second = getpass.getpass("Password again: ")
    if first != second:
        _fail("The two passwords differ; nothing was changed.")
    return first


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Database URL (default: SQLite in the user data folder).",
            envvar="MFA_TUI_DATABASE_URL",
        ),
    ] = None,
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            help="Secret key file (default: secret.key in the user data folder).",
            envvar="MFA_TUI_KEY_FILE",
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks for unexpected errors.")
    ] = False,
) -> None:
    ctx.obj = State(Config.resolve(db, key_file), debug)
    # Release the database connections when the command ends, whatever way it ends.
    ctx.call_on_close(ctx.obj.close)
    if ctx.invoked_subcommand is None:
        from mfa_tui.ui.app import run_console

        run_console(ctx.obj.config)


# Setup --------------------------------------------------------------------------------------------


@app.command()
def init(
    ctx: typer.Context,
    admin: Annotated[str, typer.Option("--admin", help="Username of the first administrator.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create the database and its first administrator."""
    from mfa_tui.core.services.users import UserService

    context = _state(ctx).context()
    users = UserService(context)
    if users.count():
        _fail("This database already has users; 'init' is for a new database.")
    password = _read_password(password_stdin, admin)
    user = users.create(_actor(), admin, role="admin", password=password)
    typer.echo(
        f"Created administrator {printable(user.username)} in {context.db.engine.url.render_as_string()}."
    )


@app.command()
def demo(
    ctx: typer.Context,
    users: Annotated[
        int, typer.Option("--users", min=0, max=2_000_000, help="Extra generated users.")
    ] = 0,
) -> None:
    """Seed an EMPTY database with demo users and print their logins."""
    from mfa_tui.core.demo import seed_demo

    logins = seed_demo(_state(ctx).context(), _actor(), users)
    typer.echo("Demo logins (shown once; change these passwords before real use):")
    for login in logins:
        typer.echo(f"  {login.username:<10} {login.password:<18} {login.role:<9} {login.note}")
    if users:
        typer.echo(f"  … and {users} generated users without passwords.")


# Users --------------------------------------------------------------------------------------------


@users_app.command("list")
def users_list(
    ctx: typer.Context,
    as_json: Annotated[
        bool, typer.Option("--json", help="A JSON array ordered by username.")
    ] = False,
    search: Annotated[
        str | None,
        typer.Option("--search", help="Substring of username, name or email (any case)."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="At most this many users.")
    ] = None,
) -> None:
    """List users with their MFA type and status as they take effect under the current policy."""
    from mfa_tui.core.services.users import UserService

    rows = UserService(_state(ctx).context()).list(search=search, limit=limit)
    if as_json:
        typer.echo(json.dumps([row.as_json() for row in rows], indent=2))
        return
    header = ("USERNAME", "NAME", "EMAIL", "ROLE", "MFA TYPE", "MFA STATUS", "LOCKED")
    table = [header] + [
        (
            printable(r.username),
            printable(r.display_name),
            printable(r.email),
            r.role,
            r.mfa_type,
            r.mfa_status,
            "yes" if r.locked else "",
        )
        for r in rows
    ]
    widths = [min(max(len(line[i]) for line in table), 40) for i in range(len(header))]
    for line in table:
        typer.echo(
            "  ".join(
                cell[:40].ljust(width) for cell, width in zip(line, widths, strict=True)
            ).rstrip()
        )


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Username (unique, any case).")],
    email: Annotated[str | None, typer.Option("--email")] = None,
    phone: Annotated[
        str | None, typer.Option("--phone", help="International form, e.g. +14155550123.")
    ] = None,
    display_name: Annotated[str | None, typer.Option("--display-name")] = None,
    role: Annotated[str, typer.Option("--role", help="user, helpdesk or admin.")] = "user",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Add a user (without a password unless --password-stdin)."""
    from mfa_tui.core.services.users import UserService

    password = _read_stdin_line("the password") if password_stdin else None
    user = UserService(_state(ctx).context()).create(
        _actor(),
        name,
        display_name=display_name,
        email=email,
        phone=phone,
        role=role,
        password=password,
    )
    typer.echo(f"Added {printable(user.username)} ({user.role}).")


@users_app.command("set-password")
def users_set_password(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Username.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Set a user's password."""
    from mfa_tui.core.services.users import UserService

    password = _read_password(password_stdin, name)
    UserService(_state(ctx).context()).set_password(_actor(), name, password)
    typer.echo(f"Password set for {printable(name)}.")


@users_app.command("delete")
def users_delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Username.")],
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: deleting cannot be undone.")] = False,
) -> None:
    """Delete a user and their MFA (never the last administrator)."""
    from mfa_tui.core.services.users import UserService

    if not yes:
        _fail(f"Deleting '{name}' cannot be undone: add --yes to confirm.")
    UserService(_state(ctx).context()).delete(_actor(), name)
    typer.echo(f"Deleted {printable(name)}.")


@users_app.command("import")
def users_import(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV with a header: username, display_name, email, phone, role, mfa_type, configure_later."
        ),
    ],
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Import the good lines and list the bad ones.")
    ] = False,
) -> None:
    """Import users from CSV: any bad line means nothing is imported (unless --skip-invalid)."""
    from mfa_tui.core.services.users import import_users

    report = import_users(_state(ctx).context(), _actor(), file, skip_invalid=skip_invalid)
    for line, problem in report.problems:
        typer.echo(f"line {line}: {printable(problem)}", err=True)
    if report.problems and not skip_invalid:
        _fail(
            f"Nothing imported: {len(report.problems)} bad line(s) in {file}; fix them or use --skip-invalid."
        )
    skipped = f", skipped {len(report.problems)} bad line(s)" if report.problems else ""
    typer.echo(f"Imported {report.imported} user(s){skipped}.")


@users_app.command("set-mfa")
def users_set_mfa(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Username.")],
    mfa_type: Annotated[
        str, typer.Option("--type", help="none, totp, email, sms, yubikey, radius or duo.")
    ],
    configure_later: Annotated[
        bool, typer.Option("--configure-later", help="The user enrolls at next login.")
    ] = False,
) -> None:
    """Set a user's MFA type. Without --configure-later, configure it now: the otpauth URI is printed
    and a code from the app is read from standard input."""
    from mfa_tui.core import validation
    from mfa_tui.core.services.mfa import MfaService

    service = MfaService(_state(ctx).context())
    actor = _actor()
    kind = validation.mfa_type(mfa_type)
    if kind == "none" or configure_later:
        service.set_type(actor, name, kind, configure_later=True)
        status = "no MFA" if kind == "none" else "pending user configuration"
        typer.echo(f"{printable(name)}: {kind}, {status}.")
        return
    start = service.begin_enrollment(actor, name, kind)
    # A script reads the URI from stdout and writes the code; a person also gets instructions.
    interactive = sys.stdin.isatty()
    if interactive:
        typer.echo(start.instructions, err=True)
    if start.provisioning_uri:
        typer.echo(start.provisioning_uri)
        if interactive:
            typer.echo(f"Secret: {start.manual_secret}", err=True)
    if interactive:
        typer.echo("Code: ", err=True, nl=False)
    code = sys.stdin.readline().strip()
    if not code or not service.confirm_code(actor, start.credential_id, code):
        service.cancel_enrollment(actor, start.credential_id)
        _fail("The code was not accepted; nothing was changed.", 1)
    service.activate(actor, name, start.credential_id)
    typer.echo(f"{printable(name)}: {kind}, configured.")


@users_app.command("reset-mfa")
def users_reset_mfa(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Username.")]
) -> None:
    """Lost device: keep the type, remove the factor and backup codes; the user enrolls again."""
    from mfa_tui.core.services.mfa import MfaService

    MfaService(_state(ctx).context()).reset(_actor(), name)
    typer.echo(f"{printable(name)}: MFA reset, pending user configuration.")


@users_app.command("unlock")
def users_unlock(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Username.")]
) -> None:
    """Lift a lockout after failed second-factor attempts."""
    from mfa_tui.core.services.mfa import MfaService

    changed = MfaService(_state(ctx).context()).unlock(_actor(), name)
    typer.echo(f"{printable(name)}: unlocked." if changed else f"{printable(name)} was not locked.")


@users_app.command("verify-caller")
def users_verify_caller(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Username of the caller.")],
    send: Annotated[
        bool, typer.Option("--send", help="First send an Email/SMS code or a Duo push.")
    ] = False,
    lost: Annotated[
        bool,
        typer.Option("--lost", help="The caller lost the factor: send a code to their address."),
    ] = False,
    backup_code: Annotated[
        bool, typer.Option("--backup-code", help="The caller reads one of their backup codes.")
    ] = False,
) -> None:
    """Helpdesk: check the code the caller reads aloud (one line on standard input)."""
    from mfa_tui.core.services.caller_check import CallerCheck

    if lost and backup_code:
        _fail("Choose --lost or --backup-code, not both.")
    check = CallerCheck(_state(ctx).context())
    actor = _actor()
    if lost:
        typer.echo(check.send_lost_code(actor, name), err=True)
    elif send:
        sent = check.send_challenge(actor, name)
        if sent:
            typer.echo(sent, err=True)
    method = "lost_code" if lost else "backup_code" if backup_code else "factor"
    result = check.check(actor, name, _read_stdin_line("the caller's code"), method)
    if result.state is not None:
        # A second prompt (a RADIUS Access-Challenge): show it, read the caller's next answer.
        typer.echo(result.message, err=True)
        answer = _read_stdin_line("the answer to the second prompt")
        result = check.check(actor, name, answer, method, state=result.state)
    if not result.status.verified:
        _fail(result.message, 1)
    typer.echo(f"{printable(name)}: {result.message}")


tap_app = typer.Typer(help="Temporary access passes: log in once to enroll a new factor.")
users_app.add_typer(tap_app, name="tap")


@tap_app.command("create")
def users_tap_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Username.")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the audit log.")] = None,
) -> None:
    """Make a pass (printed once) that lets NAME log in without the lost factor, to enroll a new one."""
    from mfa_tui.core.services.access_pass import AccessPasses

    issued = AccessPasses(_state(ctx).context()).create_tap(_actor(), name, override_reason=reason)
    use = "single use" if issued.single_use else "reusable"
    typer.echo(f"Valid until {issued.expires_at:%Y-%m-%d %H:%M} UTC, {use}.", err=True)
    typer.echo(issued.code)


@tap_app.command("revoke")
def users_tap_revoke(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Username.")]
) -> None:
    """Revoke NAME's temporary access pass."""
    from mfa_tui.core.services.access_pass import AccessPasses

    if not AccessPasses(_state(ctx).context()).revoke_tap(_actor(), name):
        _fail(f"'{printable(name)}' has no temporary access pass to revoke.")
    typer.echo(f"{printable(name)}: temporary access pass revoked.")


@users_app.command("invite")
def users_invite(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Username.")]
) -> None:
    """Send NAME an enrollment invitation (by email when set up; else the code is printed once)."""
    from mfa_tui.core.services.access_pass import AccessPasses

    issued = AccessPasses(_state(ctx).context()).invite(_actor(), name)
    until = f"valid until {issued.expires_at:%Y-%m-%d %H:%M} UTC"
    if issued.code is None:
        typer.echo(f"{printable(name)}: invitation emailed to {issued.sent_to}, {until}.")
        return
    typer.echo(f"Give this code to {printable(name)} ({until}, single use):", err=True)
    typer.echo(issued.code)


# Settings -----------------------------------------------------------------------------------------


@settings_app.command("show")
def settings_show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON object of key to value.")] = False,
) -> None:
    """Show every setting (secrets masked)."""
    from mfa_tui.core.services.settings_store import SettingsStore
    from mfa_tui.core.settings import SETTING_SPECS

    store = SettingsStore(_state(ctx).context())
    if as_json:
        # Typed values (numbers, booleans, lists) for scripts; secrets masked all the same.
        settings = store.load()
        values = {spec.key: _json_setting(spec, settings[spec.key]) for spec in SETTING_SPECS}
        typer.echo(json.dumps(values, indent=2))
        return
    shown = store.show()
    width = max(len(spec.key) for spec, _ in shown)
    for spec, text in shown:
        typer.echo(f"{spec.key.ljust(width)}  {printable(text)}")


def _json_setting(spec: SettingSpec, value: object) -> object:
    if spec.secret:
        return spec.show(value)
    if spec.kind == "types":
        return list(value)  # type: ignore[call-overload]
    return value


@settings_app.command("set")
def settings_set(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="A key from 'settings show', e.g. mfa.usage.")],
    value: Annotated[
        str | None, typer.Argument(help="The new value; lists are comma-separated.")
    ] = None,
    value_stdin: Annotated[
        bool,
        typer.Option("--value-stdin", help="Read the value from standard input (for secrets)."),
    ] = False,
) -> None:
    """Change one setting."""
    from mfa_tui.core.services.settings_store import SettingsStore
    from mfa_tui.core.settings import spec_for

    if value_stdin == (value is not None):
        _fail("Give the value either as an argument or with --value-stdin, not both or neither.")
    spec = spec_for(key)
    if spec.secret and not value_stdin:
        _fail(
            f"{key} is a secret: pass it with --value-stdin so it stays out of the shell history."
        )
    raw = _read_stdin_line("the value") if value_stdin else value
    assert raw is not None
    settings = SettingsStore(_state(ctx).context()).set_many(_actor(), {key: raw})
    typer.echo(f"{key} = {printable(spec.show(settings[key]))}")


# Audit --------------------------------------------------------------------------------------------


@audit_app.command("list")
def audit_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array, newest first.")] = False,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="CSV, safe to open in a spreadsheet.")
    ] = False,
    verify: Annotated[
        bool, typer.Option("--verify", help="Check the HMAC chain; name the first bad row.")
    ] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Only the newest N events.")
    ] = None,
    search: Annotated[
        str | None, typer.Option("--search", help="Filter on actor, action or target.")
    ] = None,
) -> None:
    """The audit log, newest first."""
    from mfa_tui.core.audit import write_csv
    from mfa_tui.core.services.audit_reader import AuditReader

    reader = AuditReader(_state(ctx).context())
    if verify:
        report = reader.verify(_actor())
        typer.echo(f"head: {report.count} events, last hash {report.head_hash}")
        if not report.ok:
            _fail(f"The audit log is broken at row {report.first_bad_seq}: {report.problem}.", 1)
        typer.echo("The audit chain is intact.")
        return
    if as_csv and not as_json:  # a copy for a file, as Logs' download: logged
        write_csv(reader.export(_actor(), limit=limit, text=search), sys.stdout)
        return
    events = reader.events(_actor(), limit=limit, text=search)
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "seq": e.seq,
                        "at": e.at.isoformat(),
                        "actor": e.actor,
                        "action": e.action,
                        "target": e.target,
                        "details": e.details,
                    }
                    for e in events
                ],
                indent=2,
            )
        )
    else:
        for e in events:
            typer.echo(
                f"{e.seq:>6}  {e.at:%Y-%m-%d %H:%M:%S}  {printable(e.actor)}  {e.action}  "
                f"{printable(e.target)}  {details_text(e.details)}".rstrip()
            )


# Second factor ------------------------------------------------------------------------------------


@app.command()
def verify(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(metavar="NAME", help="Username (not with --pam).")
    ] = None,
    send: Annotated[bool, typer.Option("--send", help="First send an Email or SMS code.")] = False,
    require: Annotated[
        bool, typer.Option("--require", help="Refuse users who need no second factor.")
    ] = False,
    pam: Annotated[
        bool,
        typer.Option(
            "--pam",
            help="Run by pam_exec (expose_authtok): the user is PAM_USER, the code the authtok.",
        ),
    ] = False,
) -> None:
    """Check NAME's second factor (PAM_USER's with --pam): reads one line (a code or a backup
    code) from standard input."""
    from mfa_tui.core.services.mfa import MfaService

    if pam:
        name, code, actor_name = pam_request(name, send)
    elif name is None:
        _fail("Name the user to check (mfa-tui verify NAME), or run it from PAM with --pam.")
    else:
        actor_name = f"{_actor().name}:verify"
    service = MfaService(_state(ctx).context())
    if send:
        # Sends an email/SMS code or a push for the user's factor; for others it sends nothing.
        sent = service.send_challenge(name)
        if sent:
            typer.echo(sent, err=True)
    if not pam:
        code = _read_stdin_line("a code")
    answer = answer_for(
        service.verify(name, code, actor_name=actor_name, exact_username=pam),
        require=require,
        pam=pam,
    )
    if answer.asks_again:
        # A second prompt (a RADIUS Access-Challenge): show it, read the next line.
        typer.echo(answer.message, err=True)
        code = _read_stdin_line("the answer to the second prompt")
        outcome = service.verify(
            name, code, actor_name=actor_name, state=answer.state, exact_username=pam
        )
        answer = answer_for(outcome, require=require, pam=pam, first_round=False)
    if answer.exit_code:
        _fail(answer.message, answer.exit_code)
    typer.echo(answer.message, err=True)


@app.command("verify-service")
def verify_service(
    ctx: typer.Context,
    socket: Annotated[
        Path | None,
        typer.Option(
            "--socket",
            help="Unix socket to listen on (default: verify_socket of the config file, else "
            "/run/mfa-tui/verify.sock).",
        ),
    ] = None,
    allow_user: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-user",
            help="Also answer this account (name or uid); root and the service's own account "
            "always are. Repeatable.",
        ),
    ] = None,
) -> None:
    """Answer 'verify' (and PAM's 'verify --pam') from one long-running process, so each check
    skips opening the database. Run it as the account that owns the database and the key."""
    from mfa_tui.core.config import DEFAULT_VERIFY_SOCKET, ConfigFile
    from mfa_tui.verify_service import allowed_uids, run

    path = socket or ConfigFile.load().verify_socket or DEFAULT_VERIFY_SOCKET
    state = _state(ctx)
    run(state.config, state.context, path, allowed_uids(allow_user or ()))


@app.command()
def login(ctx: typer.Context) -> None:
    """Your own MFA in the console, as the OS account you logged in with: enrollment when it is
    pending, else Preferences. For SSH ForceCommand or a login shell, through the sudo rule in
    the README's "Protecting SSH logins"."""
    from mfa_tui.core.config import service_account
    from mfa_tui.core.os_identity import terminal_user
    from mfa_tui.core.services.terminal_login import TerminalLoginService

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        _fail("'mfa-tui login' needs a terminal; with ssh, add -t.")
    person = terminal_user(service_account())
    context = _state(ctx).context()
    start = TerminalLoginService(context).start(person.name, person.via)

    from mfa_tui.ui.login_session import TerminalLoginApp

    TerminalLoginApp(context, start).run()


# Browser ------------------------------------------------------------------------------------------


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; loopback unless behind a proxy.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")
    ] = 8000,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            help="The address browsers open, e.g. https://mfa.example.com behind a reverse proxy "
            "(default: http://HOST:PORT). Only pages from it may open a console.",
        ),
    ] = None,
    max_sessions: Annotated[
        int, typer.Option("--max-sessions", min=1, help="Consoles open at once, at most.")
    ] = 10,
    idle_minutes: Annotated[
        int,
        typer.Option(
            "--idle-minutes", min=1, help="End a console after this long without a key or a click."
        ),
    ] = 15,
) -> None:
    """Serve the console to web browsers: every tab is a session of its own and logs in with its
    password and second factor, like a terminal."""
    from mfa_tui.core.services.users import UserService
    from mfa_tui.serve.server import ConsoleServer, is_loopback, public_url_for

    if public_url is None and host in ("0.0.0.0", "::", ""):
        # Browsers never open a wildcard address, so no page would pass the Origin check.
        _fail(
            f"Serving on {host or 'every address'} needs --public-url: the address browsers open "
            "(e.g. https://mfa.example.com through the reverse proxy)."
        )
    url = public_url_for(host, port, public_url)
    state = _state(ctx)
    # Open (and upgrade) the database once now: a wrong URL or key fails here, not in every tab.
    has_users = UserService(state.context()).count() > 0
    state.close()
    if not has_users:
        # Or the first browser to arrive would be offered "Create administrator".
        _fail("This database has no users: create the first administrator with 'init' first.")
    if not is_loopback(host):
        typer.echo(
            f"mfa-tui: warning: serving on {host}, which other machines can reach. The web server "
            "has no authentication of its own: put it behind TLS and an authenticating reverse "
            "proxy, and pass the proxy's address as --public-url.",
            err=True,
        )
    server = ConsoleServer(
        state.config,
        host=host,
        port=port,
        public_url=url,
        max_sessions=max_sessions,
        idle_minutes=idle_minutes,
    )
    try:
        server.serve()
    except OSError as error:  # the address is taken or not this machine's
        _fail(f"Cannot listen on {host} port {port}: {error.strerror or error}.")


# Database -----------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Upgrade the database schema to this version (also done automatically on start)."""
    from mfa_tui.core import schema

    context = _state(ctx).context()
    typer.echo(f"The database is at schema {schema.current_revision(context.db.engine)} (newest).")


@keys_app.command("rotate")
def keys_rotate(ctx: typer.Context) -> None:
    """Re-encrypt every secret under a new key and replace the key file (stop other consoles first)."""
    from mfa_tui.core import key_rotation

    state = _state(ctx)
    result = key_rotation.rotate(state.context(), state.config, _actor())
    typer.echo(
        f"Rotated the secret key {result.old_key_id} -> {result.new_key_id}: {result.resealed} "
        f"secret(s) re-encrypted, {state.config.key_file} replaced. Back up the new key file."
    )


@functools.cache
def _command() -> typer.main._click.Command:
    """Built once per process: typer reads every signature, which costs more than most commands."""
    return typer.main.get_command(app)


def main(argv: list[str] | None = None) -> NoReturn:
    args = list(sys.argv[1:] if argv is None else argv)
    if not all(_is_text(arg) for arg in args):
        # Bytes that are not UTF-8 reach Python as lone surrogates, which no database stores.
        _print_error("An argument is not valid UTF-8 text; retype it in a UTF-8 terminal.")
        sys.exit(2)
    debug = "--debug" in args
    try:
        console = _console_options(args)
        if console is not None:
            from mfa_tui.ui.app import run_console

            run_console(Config.resolve(*console))
            code: object = 0
        else:
            code = _command().main(args=args, prog_name="mfa-tui", standalone_mode=False)
    except _Exit as failure:
        _print_error(str(failure))
        sys.exit(failure.code)
    except MfaTuiError as error:
        if debug:
            raise
        _print_error(str(error))
        sys.exit(error.exit_code)
    except typer.Abort:
        _print_error("Interrupted; nothing more was changed.")
        sys.exit(1)
    except KeyboardInterrupt:
        _print_error("Interrupted.")
        sys.exit(130)
    except Exception as error:  # the last line of defence: no traceback reaches a person
        if _is_parser_error(error):
            # Typer's parser errors (a vendored click): usage problems are exit 2.
            _print_error(_usage_message(error))
            sys.exit(getattr(error, "exit_code", 2))
        if debug:
            raise
        problem = _database_problem(error)
        if problem is not None:
            _print_error(problem)
            sys.exit(3)
        _print_error(
            f"Unexpected error: {type(error).__name__}: {error} (run with --debug for details)."
        )
        sys.exit(3)
    sys.exit(code if isinstance(code, int) else 0)


def _console_options(args: list[str]) -> tuple[str | None, str | None] | None:
    """(--db, --key-file) when ``args`` only open the console, else None (typer parses them).

    The console is what people start most, and building typer's command from every function
    here takes longer than painting the login screen; only these three options are taken here.
    """
    values: dict[str, str | None] = {"--db": None, "--key-file": None}
    rest = iter(args)
    for arg in rest:
        name, equals, value = arg.partition("=")
        if arg == "--debug":
            continue
        if name not in values or values[name] is not None:
            return None
        if not equals:
            value = next(rest, "")
            if not value or value.startswith("-"):
                return None  # let typer say what is missing
        values[name] = value
    return values["--db"], values["--key-file"]


def _is_text(arg: str) -> bool:
    try:
        arg.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_parser_error(error: Exception) -> bool:
    return callable(getattr(error, "format_message", None)) and isinstance(
        getattr(error, "exit_code", None), int
    )


def _usage_message(error: Exception) -> str:
    context = getattr(error, "ctx", None)
    if context is None:
        return str(error.format_message())  # type: ignore[attr-defined]
    hint = f"see '{context.command_path} --help'"
    if type(error).__name__ == "NoArgsIsHelpError":
        # A group called without its command: name the commands instead of dumping the help.
        names = ", ".join(context.command.list_commands(context))
        return f"'{context.command_path}' needs a command: {names} ({hint})."
    message = str(error.format_message()).rstrip(".")  # type: ignore[attr-defined]
    return f"{message} ({hint})."


def _database_problem(error: Exception) -> str | None:
    """A database error raised outside the services' own translation, e.g. a server down at start."""
    if "sqlalchemy" not in sys.modules:
        return None
    from sqlalchemy.exc import SQLAlchemyError

    from mfa_tui.core.db import database_error

    if isinstance(error, SQLAlchemyError):
        return str(database_error(error))
    return None


def _print_error(message: str) -> None:
    print(f"mfa-tui: {printable(message)}", file=sys.stderr)


__all__ = ["InputError", "app", "main"]
