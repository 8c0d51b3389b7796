"""Where things live: the database URL and the secret key, from flags, environment, a config file or
defaults — in that order of precedence.

The system config file (``/etc/mfa-tui/config.toml``, or the file ``MFA_TUI_CONFIG`` names) is what
``mfa-tui verify --pam`` and ``mfa-tui login`` use on a server: pam_exec drops the environment and
sudo resets it, so neither can rely on environment variables. It is read only when a value is
needed from it, so a person who passes ``--db`` and ``--key-file`` never depends on it. The
service account (whose sudo ``login`` believes) comes from the system file only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mfa_tui.core.errors import InputError

APP_NAME = "mfa-tui"
DATABASE_ENV_VAR = "MFA_TUI_DATABASE_URL"
KEY_FILE_ENV_VAR = "MFA_TUI_KEY_FILE"
SECRET_KEY_ENV_VAR = "MFA_TUI_SECRET_KEY"
CONFIG_ENV_VAR = "MFA_TUI_CONFIG"
SYSTEM_CONFIG_FILE = Path("/etc/mfa-tui/config.toml")
# The account that owns the database and the key on a server (see "Protecting SSH logins").
DEFAULT_SERVICE_ACCOUNT = "mfa-tui"
# Where ``mfa-tui verify-service`` listens and ``verify`` asks it first (systemd's RuntimeDirectory).
DEFAULT_VERIFY_SOCKET = Path("/run/mfa-tui/verify.sock")
CONFIG_KEYS = ("database_url", "key_file", "service_account", "verify_socket")


def data_dir() -> Path:
    import platformdirs  # here: a command given --db and --key-file never needs it

    return platformdirs.user_data_path(APP_NAME, appauthor=False)


class ConfigFileError(InputError):
    """The config file exists but cannot be used (exit 2: fix the file)."""


@dataclass(frozen=True)
class ConfigFile:
    """The settings of one config file; empty when there is none."""

    path: Path | None = None
    database_url: str | None = None
    key_file: Path | None = None
    service_account: str | None = None
    verify_socket: Path | None = None

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> ConfigFile:
        """``MFA_TUI_CONFIG``'s file (which must exist), else the system file if there is one."""
        env = os.environ if environ is None else environ
        named = env.get(CONFIG_ENV_VAR)
        if named:
            return cls.read(Path(named).expanduser())
        if SYSTEM_CONFIG_FILE.exists():
            return cls.read(SYSTEM_CONFIG_FILE)
        return cls()

    @classmethod
    def read(cls, path: Path) -> ConfigFile:
        import tomllib

        try:
            with path.open("rb") as file:
                values = tomllib.load(file)
        except FileNotFoundError as error:
            raise ConfigFileError(
                f"The config file {path} does not exist; create it or unset {CONFIG_ENV_VAR}."
            ) from error
        except OSError as error:
            raise ConfigFileError(
                f"Cannot read the config file {path}: {error.strerror or error}."
            ) from error
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ConfigFileError(
                f"The config file {path} is not valid TOML ({error}); fix it or remove it."
            ) from error
        unknown = sorted(set(values) - set(CONFIG_KEYS))
        if unknown:
            raise ConfigFileError(
                f"The config file {path} has an unknown setting '{unknown[0]}'; "
                f"the settings are {', '.join(CONFIG_KEYS)}."
            )
        for key, value in values.items():
            if not isinstance(value, str) or not value.strip():
                raise ConfigFileError(
                    f"In the config file {path}, {key} must be a non-empty text in quotes."
                )
        key_file, socket = values.get("key_file"), values.get("verify_socket")
        return cls(
            path=path,
            database_url=values.get("database_url"),
            # A relative key file is next to the config file, wherever the process was started.
            key_file=path.parent / Path(key_file).expanduser() if key_file else None,
            service_account=values.get("service_account"),
            verify_socket=path.parent / Path(socket).expanduser() if socket else None,
        )


@dataclass(frozen=True)
class Config:
    database_url: str
    key_file: Path
    # A base64 key given through the environment (containers); wins over the key file.
    secret_key_text: str | None = None

    @classmethod
    def resolve(
        cls,
        database_url: str | None = None,
        key_file: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Config:
        """Flag, else environment variable, else config file, else the per-user default."""
        env = os.environ if environ is None else environ
        url = database_url or env.get(DATABASE_ENV_VAR)
        key_path = key_file or env.get(KEY_FILE_ENV_VAR)
        # Read only when it decides something, so flags alone never depend on the file.
        file = ConfigFile() if url and key_path else ConfigFile.load(env)
        return cls(
            database_url=url or file.database_url or f"sqlite:///{data_dir() / 'mfa-tui.db'}",
            key_file=Path(key_path or file.key_file or data_dir() / "secret.key").expanduser(),
            secret_key_text=env.get(SECRET_KEY_ENV_VAR) or None,
        )


def service_account(system_file: Path = SYSTEM_CONFIG_FILE) -> str:
    """The account whose sudo is believed about who is at the terminal (``mfa-tui login``).

    Only from the system file, which root owns: ``MFA_TUI_CONFIG`` is the caller's to choose, and
    naming their own account here would let them vouch for themselves."""
    file = ConfigFile.read(system_file) if system_file.exists() else ConfigFile()
    return file.service_account or DEFAULT_SERVICE_ACCOUNT
