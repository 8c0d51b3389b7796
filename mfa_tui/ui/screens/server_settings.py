"""Administration – Server Settings – Multi-factor (administrators only).

Saving validates every value and the combination first; a change of MFA usage says how many
users it affects before it is saved.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Footer, Header, Input, Label, Select, Static

from mfa_tui.core.errors import MfaTuiError
from mfa_tui.core.factors import available_types
from mfa_tui.core.models import MFA_TYPE_LABELS, MfaType
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.settings import (
    ALL_TYPES,
    SETTING_SPECS,
    USAGE_CHOICES,
    USAGE_LABELS,
    Settings,
    SettingSpec,
    spec_for,
    validate_combination,
)
from mfa_tui.ui.display import plain
from mfa_tui.ui.widgets.text_input import TextInput

# Setting key → widget id, for the plain text and number fields.
TEXT_FIELDS = {
    "mfa.pending_expiry_days": "pending-expiry-days",
    "backup_codes.count": "backup-codes-count",
    "lockout.attempts": "lockout-attempts",
    "lockout.minutes": "lockout-minutes",
    "totp.issuer": "totp-issuer",
    "totp.period": "totp-period",
    "totp.drift": "totp-drift",
    "tap.lifetime_minutes": "tap-lifetime-minutes",
}
LABELS = {
    "mfa.pending_expiry_days": "Pending expires after (days, 0 = never)",
    "backup_codes.count": "Number of backup codes",
    "lockout.attempts": "Failed attempts before lock",
    "lockout.minutes": "Lock duration (minutes, 0 = until unlocked)",
    "totp.issuer": "Authenticator issuer name",
    "totp.period": "Period (seconds)",
    "totp.drift": "Allowed clock drift (steps)",
    "tap.lifetime_minutes": "Lifetime (minutes)",
}


# Setting prefix → (section title, the MFA type whose "Test" action checks it).
DELIVERY_SECTIONS = {
    "smtp": ("Email delivery (SMTP)", "email"),
    "sms": ("SMS delivery", "sms"),
    "yubikey": ("Yubikey validation", "yubikey"),
    "radius": ("RADIUS", "radius"),
    "duo": ("Duo", "duo"),
}


def _field_id(key: str) -> str:
    return "setting-" + key.replace(".", "-").replace("_", "-")


def _field(spec: SettingSpec, value: object) -> Widget:
    """A widget for one setting, chosen by its kind; secrets are never shown, only replaced."""
    if spec.kind == "bool":
        return Checkbox("", bool(value), id=_field_id(spec.key))
    if spec.kind == "choice":
        return Select(
            [(c, c) for c in spec.choices],
            value=str(value),
            allow_blank=False,
            id=_field_id(spec.key),
        )
    if spec.secret:
        placeholder = "set — type to replace" if value else "not set"
        return TextInput(id=_field_id(spec.key), password=True, placeholder=placeholder)
    return TextInput(str(value), id=_field_id(spec.key))


class ServerSettingsScreen(Screen[None]):
    DEFAULT_CSS = """
    ServerSettingsScreen #settings-form { padding: 0 1; }
    ServerSettingsScreen .fields { grid-size: 2; grid-columns: 46 1fr; grid-rows: auto; height: auto; }
    ServerSettingsScreen Input { border: none; height: 1; padding: 0 1; background: $boost; width: 30; }
    ServerSettingsScreen Input:focus { border: none; background: $primary 30%; }
    ServerSettingsScreen SelectCurrent { border: none; height: 1; padding: 0 1; background: $boost; }
    ServerSettingsScreen Select { width: 30; }
    ServerSettingsScreen Checkbox { border: none; height: 1; padding: 0; background: transparent; }
    ServerSettingsScreen #settings-buttons { dock: bottom; height: 3; padding: 0 1; }
    ServerSettingsScreen #settings-buttons Button { margin-right: 2; }
    ServerSettingsScreen #settings-message { height: auto; padding: 0 1; }
    ServerSettingsScreen .test-button { margin: 1 0 0 0; }
    """
    BINDINGS = [Binding("escape", "back", "Back"), Binding("ctrl+s", "save", "Save")]

    def __init__(self, settings: Settings) -> None:
        """``settings``: as read by the caller, in a worker, when it opened this screen."""
        super().__init__()
        self.settings = settings

    def compose(self) -> ComposeResult:
        settings = self.settings
        available = available_types()
        yield Header()
        with VerticalScroll(id="settings-form"):
            yield Static("Multi-factor", classes="section-title")
            with Grid(classes="fields"):
                yield Label("MFA usage")
                yield Select(
                    [(USAGE_LABELS[u], u) for u in USAGE_CHOICES],
                    value=settings.usage,
                    allow_blank=False,
                    id="mfa-usage",
                )
                yield Label("Default type (used by Required)")
                yield Select(
                    [(MFA_TYPE_LABELS[MfaType(t)], t) for t in ALL_TYPES],
                    value=settings.default_type,
                    allow_blank=False,
                    id="default-type",
                )
                yield Label("Pending expires after (days, 0 = never)")
                yield TextInput(str(settings["mfa.pending_expiry_days"]), id="pending-expiry-days")
            yield Static("Supported MFA", classes="section-title")
            for name in ALL_TYPES:
                label = MFA_TYPE_LABELS[MfaType(name)]
                yield Checkbox(
                    label if name in available else f"{label} (not available in this version)",
                    name in settings.supported_types,
                    id=f"supported-{name}",
                    disabled=name not in available,
                )
            yield Static("Alternate ways to log in", classes="section-title")
            yield Checkbox("Email code", settings["alternate.email"], id="alternate-email")
            yield Checkbox(
                "Backup codes", settings.backup_codes_enabled, id="alternate-backup-codes"
            )
            with Grid(classes="fields"):
                for key in ("backup_codes.count",):
                    yield Label(LABELS[key])
                    yield TextInput(str(settings[key]), id=TEXT_FIELDS[key])
            yield Static("Lockout", classes="section-title")
            with Grid(classes="fields"):
                for key in ("lockout.attempts", "lockout.minutes"):
                    yield Label(LABELS[key])
                    yield TextInput(str(settings[key]), id=TEXT_FIELDS[key])
            yield Static("Temporary access pass", classes="section-title")
            with Grid(classes="fields"):
                yield Label(LABELS["tap.lifetime_minutes"])
                yield TextInput(str(settings["tap.lifetime_minutes"]), id="tap-lifetime-minutes")
            yield Checkbox("Single use", settings["tap.single_use"], id="tap-single-use")
            yield Static("Authenticator (TOTP)", classes="section-title")
            with Grid(classes="fields"):
                yield Label(LABELS["totp.issuer"])
                yield TextInput(settings.totp_issuer, id="totp-issuer")
                yield Label("Digits")
                yield Select(
                    [("6", "6"), ("8", "8")],
                    value=str(settings["totp.digits"]),
                    allow_blank=False,
                    id="totp-digits",
                )
                for key in ("totp.period", "totp.drift"):
                    yield Label(LABELS[key])
                    yield TextInput(str(settings[key]), id=TEXT_FIELDS[key])
                yield Label("Algorithm")
                yield Select(
                    [(a, a) for a in ("SHA1", "SHA256", "SHA512")],
                    value=settings["totp.algorithm"],
                    allow_blank=False,
                    id="totp-algorithm",
                )
            for prefix, (title, _factor_type) in DELIVERY_SECTIONS.items():
                yield Static(title, classes="section-title")
                with Grid(classes="fields"):
                    for spec in SETTING_SPECS:
                        if spec.key.startswith(prefix + "."):
                            yield Label(spec.description)
                            yield _field(spec, settings[spec.key])
                yield Button(f"Test {title.lower()}", id=f"test-{prefix}", classes="test-button")
        yield Static("", id="settings-message", classes="form-error")
        with Horizontal(id="settings-buttons"):
            yield Button("Save", id="save", variant="primary")
            yield Button("Back", id="back")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Server Settings – Multi-factor"

    def _values(self) -> dict[str, str]:
        values = {
            key: self.query_one(f"#{widget}", Input).value for key, widget in TEXT_FIELDS.items()
        }
        values["mfa.usage"] = str(self.query_one("#mfa-usage", Select).value)
        values["mfa.default_type"] = str(self.query_one("#default-type", Select).value)
        values["mfa.supported"] = ",".join(
            name for name in ALL_TYPES if self.query_one(f"#supported-{name}", Checkbox).value
        )
        values["alternate.email"] = str(self.query_one("#alternate-email", Checkbox).value)
        values["alternate.backup_codes"] = str(
            self.query_one("#alternate-backup-codes", Checkbox).value
        )
        values["tap.single_use"] = str(self.query_one("#tap-single-use", Checkbox).value)
        values["totp.digits"] = str(self.query_one("#totp-digits", Select).value)
        values["totp.algorithm"] = str(self.query_one("#totp-algorithm", Select).value)
        for spec in SETTING_SPECS:
            if spec.key.split(".")[0] not in DELIVERY_SECTIONS:
                continue
            widget = self.query_one(f"#{_field_id(spec.key)}")
            if isinstance(widget, Checkbox | Select):
                values[spec.key] = str(widget.value)
            elif isinstance(widget, Input) and (widget.value or not spec.secret):
                # An empty secret field means "keep the stored secret".
                values[spec.key] = widget.value
        return values

    @on(Button.Pressed, ".test-button")
    def _test(self, event: Button.Pressed) -> None:
        prefix = (event.button.id or "").removeprefix("test-")
        self._say(f"Testing {DELIVERY_SECTIONS[prefix][0].lower()} with the saved settings…")
        self._run_test(prefix)

    @work(thread=True, exclusive=True, group="settings-test")
    def _run_test(self, prefix: str) -> None:
        from mfa_tui.core.factors import FactorEnv, factor_for
        from mfa_tui.core.services.users import UserService

        ctx = self.app.ctx  # type: ignore[attr-defined]
        factor_type = DELIVERY_SECTIONS[prefix][1]
        try:
            factor = factor_for(factor_type)
        except LookupError:
            self.app.call_from_thread(
                self._say,
                f"{MFA_TYPE_LABELS[MfaType(factor_type)]} is not available in this version.",
            )
            return
        signed_in = self.app.signed_in  # type: ignore[attr-defined]
        try:
            user = UserService(ctx).user_row(signed_in.user.id)
            env = FactorEnv(ctx, SettingsStore(ctx).load(), ctx.clock.now())
            result = factor.test_settings(env, user)  # type: ignore[attr-defined]
        except MfaTuiError as error:
            result = str(error)
        self.app.call_from_thread(self._say, result)

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        self._impact(self._values())

    @work(thread=True, exclusive=True)
    def _impact(self, values: dict[str, str]) -> None:
        store = SettingsStore(self.app.ctx)  # type: ignore[attr-defined]
        usage = values["mfa.usage"]
        # Say what is wrong before asking to confirm a change that could not be saved anyway.
        try:
            current = updated = store.load()
            for key, raw in values.items():
                updated = updated.with_value(key, spec_for(key).parse(raw))
            validate_combination(updated)
            affected = store.users_affected(usage) if usage != current.usage else 0
        except MfaTuiError as error:
            self.app.call_from_thread(self._say, str(error))
            return
        self.app.call_from_thread(self._confirm, values, current, affected)

    def _confirm(self, values: dict[str, str], current: Settings, affected: int) -> None:
        usage = values["mfa.usage"]
        if usage == current.usage:
            self._save(values)
            return
        from mfa_tui.ui.screens.confirm import ConfirmScreen

        effect = {
            "required": "must use a second factor (those without one enroll at next login)",
            "skipped": "will no longer be asked for a second factor",
            "optional": "will follow their own MFA type",
        }[usage]
        question = (
            f"Change MFA usage from {USAGE_LABELS[current.usage]} to {USAGE_LABELS[usage]}? "
            f"{affected:,} user{'s' if affected != 1 else ''} {effect}."
        )
        self.app.push_screen(
            ConfirmScreen(question, "Save"), lambda ok: self._save(values) if ok else None
        )

    @work(thread=True, exclusive=True, group="save-settings")
    def _save(self, values: dict[str, str]) -> None:
        actor = self.app.signed_in.actor  # type: ignore[attr-defined]
        try:
            SettingsStore(self.app.ctx).set_many(actor, values)  # type: ignore[attr-defined]
        except MfaTuiError as error:
            self.app.call_from_thread(self._say, str(error))
            return
        self.app.call_from_thread(self._say, "Settings saved.")
        self.app.call_from_thread(self.app.notify, "Server settings saved.")

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        self.app.pop_screen()

    def _say(self, message: str) -> None:
        self.query_one("#settings-message", Static).update(plain(message))
