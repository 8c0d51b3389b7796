"""Where the database and key come from: flag, then environment, then config file, then default.

The config file is ``/etc/mfa-tui/config.toml`` or the file ``MFA_TUI_CONFIG`` names; every test
here names its own (``/dev/null`` is an empty one), so a config file on the machine never leaks in.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs
import pytest

from mfa_tui.core.config import (
    DEFAULT_SERVICE_ACCOUNT,
    Config,
    ConfigFileError,
    service_account,
)

FILE_URL = "postgresql+psycopg://mfa@db.example/mfa"


def _config_file(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "etc" / "config.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return {"MFA_TUI_CONFIG": str(path)}


def _one_sentence(error: pytest.ExceptionInfo[ConfigFileError]) -> str:
    message = str(error.value)
    assert "\n" not in message and message.endswith("."), message
    assert error.value.exit_code == 2
    return message


def test_the_config_file_gives_the_database_the_key_and_the_service_account(
    tmp_path: Path,
) -> None:
    environ = _config_file(
        tmp_path,
        f'database_url = "{FILE_URL}"\nkey_file = "keys/secret.key"\nservice_account = "mfa"\n',
    )

    config = Config.resolve(environ=environ)

    assert config.database_url == FILE_URL
    # Relative to the config file's folder, wherever the process was started.
    assert config.key_file == tmp_path / "etc" / "keys" / "secret.key"
    assert service_account(Path(environ["MFA_TUI_CONFIG"])) == "mfa"


@pytest.mark.parametrize(
    ("flag", "env", "in_file", "expected"),
    [
        ("sqlite:///flag.db", "sqlite:///env.db", True, "sqlite:///flag.db"),
        (None, "sqlite:///env.db", True, "sqlite:///env.db"),
        (None, None, True, FILE_URL),
        (None, None, False, "default"),
    ],
    ids=["flag", "environment", "config file", "default"],
)
def test_precedence_is_flag_then_environment_then_file_then_default(
    tmp_path: Path, flag: str | None, env: str | None, in_file: bool, expected: str
) -> None:
    environ = _config_file(tmp_path, f'database_url = "{FILE_URL}"\n' if in_file else "")
    if env:
        environ["MFA_TUI_DATABASE_URL"] = env

    config = Config.resolve(flag, environ=environ)

    default = f"sqlite:///{platformdirs.user_data_path('mfa-tui') / 'mfa-tui.db'}"
    assert config.database_url == (default if expected == "default" else expected)


def test_the_key_file_follows_the_same_precedence(tmp_path: Path) -> None:
    environ = _config_file(tmp_path, 'key_file = "/srv/mfa/file.key"\n')

    assert Config.resolve(environ=environ).key_file == Path("/srv/mfa/file.key")
    environ["MFA_TUI_KEY_FILE"] = "/env.key"
    assert Config.resolve(environ=environ).key_file == Path("/env.key")
    assert Config.resolve(key_file="/flag.key", environ=environ).key_file == Path("/flag.key")


def test_an_empty_config_file_changes_nothing() -> None:
    config = Config.resolve(environ={"MFA_TUI_CONFIG": "/dev/null"})

    assert config == Config.resolve(environ={"MFA_TUI_CONFIG": "/dev/null", "UNRELATED": "1"})
    assert config.key_file == platformdirs.user_data_path("mfa-tui") / "secret.key"
    assert service_account(Path("/dev/null")) == DEFAULT_SERVICE_ACCOUNT
    assert service_account(Path("/nonexistent/config.toml")) == DEFAULT_SERVICE_ACCOUNT


def test_bad_toml_is_one_clear_sentence(tmp_path: Path) -> None:
    environ = _config_file(tmp_path, 'database_url = "sqlite:///a.db\nkey_file = 3 4\n')

    with pytest.raises(ConfigFileError) as refused:
        Config.resolve(environ=environ)

    message = _one_sentence(refused)
    assert "config.toml is not valid TOML" in message
    assert "line 1" in message


def test_a_named_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError) as refused:
        Config.resolve(environ={"MFA_TUI_CONFIG": str(tmp_path / "missing.toml")})

    message = _one_sentence(refused)
    assert "missing.toml does not exist" in message
    assert "MFA_TUI_CONFIG" in message


def test_an_unknown_setting_is_named_with_the_known_ones(tmp_path: Path) -> None:
    environ = _config_file(tmp_path, 'databse_url = "sqlite:///typo.db"\n')

    with pytest.raises(ConfigFileError) as refused:
        Config.resolve(environ=environ)

    message = _one_sentence(refused)
    assert "'databse_url'" in message
    assert "database_url, key_file, service_account" in message


@pytest.mark.parametrize("value", ["3", '""', '["a"]', '{ url = "x" }'])
def test_a_setting_must_be_text(tmp_path: Path, value: str) -> None:
    environ = _config_file(tmp_path, f"key_file = {value}\n")

    with pytest.raises(ConfigFileError) as refused:
        Config.resolve(environ=environ)

    assert "key_file must be a non-empty text" in _one_sentence(refused)


def test_the_service_account_is_never_taken_from_a_file_the_caller_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MFA_TUI_CONFIG is the caller's choice: whose sudo to believe must not be."""
    environ = _config_file(tmp_path, 'database_url = "sqlite:///x.db"\nservice_account = "eve"\n')
    monkeypatch.setenv("MFA_TUI_CONFIG", environ["MFA_TUI_CONFIG"])

    assert Config.resolve().database_url == "sqlite:///x.db"  # used for where things are…
    assert service_account() != "eve"  # …never for whom to believe


def test_with_both_paths_given_the_config_file_is_not_read(tmp_path: Path) -> None:
    """A person passing --db and --key-file never depends on the server's config file."""
    environ = _config_file(tmp_path, "this is not toml")

    config = Config.resolve("sqlite:///flag.db", tmp_path / "flag.key", environ=environ)

    assert config.database_url == "sqlite:///flag.db"
    with pytest.raises(ConfigFileError):
        Config.resolve("sqlite:///flag.db", environ=environ)


def test_an_unreadable_config_file_says_so(tmp_path: Path) -> None:
    environ = _config_file(tmp_path, "")
    Path(environ["MFA_TUI_CONFIG"]).unlink()
    Path(environ["MFA_TUI_CONFIG"]).mkdir()

    with pytest.raises(ConfigFileError) as refused:
        Config.resolve(environ=environ)

    assert "Cannot read the config file" in _one_sentence(refused)


def test_the_documented_config_file_is_valid() -> None:
    documented = Path(__file__).resolve().parents[2] / "deploy" / "etc" / "mfa-tui" / "config.toml"

    config = Config.resolve(environ={"MFA_TUI_CONFIG": str(documented)})

    assert config.database_url == "sqlite:////var/lib/mfa-tui/mfa-tui.db"
    assert config.key_file == Path("/var/lib/mfa-tui/secret.key")
    assert service_account(documented) == DEFAULT_SERVICE_ACCOUNT
