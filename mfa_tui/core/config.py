"""Where things live: the database URL and the secret key, from flags, environment or defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "mfa-tui"
DATABASE_ENV_VAR = "MFA_TUI_DATABASE_URL"
KEY_FILE_ENV_VAR = "MFA_TUI_KEY_FILE"
SECRET_KEY_ENV_VAR = "MFA_TUI_SECRET_KEY"


def data_dir() -> Path:
    return platformdirs.user_data_path(APP_NAME, appauthor=False)


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
        env = os.environ if environ is None else environ
        url = database_url or env.get(DATABASE_ENV_VAR) or f"sqlite:///{data_dir() / 'mfa-tui.db'}"
        key_path = key_file or env.get(KEY_FILE_ENV_VAR) or data_dir() / "secret.key"
        return cls(
            database_url=url,
            key_file=Path(key_path).expanduser(),
            secret_key_text=env.get(SECRET_KEY_ENV_VAR) or None,
        )
