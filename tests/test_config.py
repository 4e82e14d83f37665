"""Settings (jp_primary/config.py): every class reads its ``JP_*`` variables from the environment
and from the ``JP_SETTINGS_FILE`` file, refuses bad values naming the field, and puts the paths not
set explicitly under ``JP_HOME``.

The checks look a value up among the class's dumped values rather than by attribute name, so they
hold whatever the fields are called; the variable names are the contract.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from jp_primary.config import (
    AuthSettings,
    DatabaseSettings,
    DoorSettings,
    ServerSettings,
    Settings,
    StorageSettings,
    TagSettings,
    load_settings,
)

GIB = 1024**3

# (settings class, variable, value as written, value as read)
VARIABLES: list[tuple[type[Any], str, str, object]] = [
    (ServerSettings, "JP_HOME", "/srv/jp", Path("/srv/jp")),
    (ServerSettings, "JP_HOST", "0.0.0.0", "0.0.0.0"),
    (ServerSettings, "JP_PORT", "9443", 9443),
    (ServerSettings, "JP_WORKERS", "4", 4),
    (ServerSettings, "JP_PUBLIC_URL", "https://jp.example.org", "https://jp.example.org"),
    (
        DatabaseSettings,
        "JP_DATABASE_URL",
        "postgresql+psycopg://jp@db/jp",
        "postgresql+psycopg://jp@db/jp",
    ),
    (DatabaseSettings, "JP_DATABASE_POOL_SIZE", "3", 3),
    (StorageSettings, "JP_STORAGE_BACKEND", "s3", "s3"),
    (StorageSettings, "JP_STORAGE_ROOT", "/data/jp", Path("/data/jp")),
    (StorageSettings, "JP_MAX_FILE_SIZE", "2GiB", 2 * GIB),
    (StorageSettings, "JP_UPLOAD_DEADLINE", "60", 60),
    (AuthSettings, "JP_TOKEN_KEY_PATH", "/etc/jp/token.key", Path("/etc/jp/token.key")),
    (AuthSettings, "JP_TOKEN_TTL", "600", 600),
    (AuthSettings, "JP_POLICY_FILE", "/etc/jp/policy.toml", Path("/etc/jp/policy.toml")),
    (AuthSettings, "JP_ISSUERS_FILE", "/etc/jp/issuers.toml", Path("/etc/jp/issuers.toml")),
    (AuthSettings, "JP_TRUSTED_FRONTENDS", "127.0.0.1, 10.1.0.0/24", ["127.0.0.1", "10.1.0.0/24"]),
    (AuthSettings, "JP_FRONTEND_DN_HEADER", "X-Client-DN", "X-Client-DN"),
    (
        DoorSettings,
        "JP_FTPD_PUBLIC_URL",
        "ftps://door.example.org:2121",
        "ftps://door.example.org:2121",
    ),
    (DoorSettings, "JP_FTPD_HOST", "0.0.0.0", "0.0.0.0"),
    (DoorSettings, "JP_FTPD_PORT", "2121", 2121),
    (DoorSettings, "JP_FTPD_CERTFILE", "/etc/jp/door.pem", Path("/etc/jp/door.pem")),
    (DoorSettings, "JP_FTPD_KEYFILE", "/etc/jp/door.key", Path("/etc/jp/door.key")),
    (DoorSettings, "JP_FTPD_PASSIVE_PORTS", "60000-60100", "60000-60100"),
    (DoorSettings, "JP_FTPD_MASQUERADE_ADDRESS", "192.0.2.7", "192.0.2.7"),
    (TagSettings, "JP_MAX_TAGS_PER_REQUEST", "7", 7),
    (TagSettings, "JP_MAX_TAGS_PER_JOB", "70", 70),
    (TagSettings, "JP_MAX_TAG_VALUE", "700", 700),
]
IDS = [variable for _, variable, _, _ in VARIABLES]

# (settings class, variable, bad value, words the error must carry)
BAD: list[tuple[type[Any], str, str, tuple[str, ...]]] = [
    (ServerSettings, "JP_PORT", "70000", ("port", "65535")),
    (ServerSettings, "JP_PORT", "http", ("port", "integer")),
    (ServerSettings, "JP_WORKERS", "0", ("workers", "greater than or equal to 1")),
    (DatabaseSettings, "JP_DATABASE_POOL_SIZE", "0", ("pool_size", "greater than or equal to 1")),
    (StorageSettings, "JP_MAX_FILE_SIZE", "lots", ("JP_MAX_FILE_SIZE", "could not parse value")),
    (StorageSettings, "JP_UPLOAD_DEADLINE", "0", ("JP_UPLOAD_DEADLINE", "greater than or equal")),
    (AuthSettings, "JP_TOKEN_TTL", "a day", ("ttl", "integer")),
    (DoorSettings, "JP_FTPD_PORT", "-1", ("port", "greater than or equal to 0")),
    (TagSettings, "JP_MAX_TAGS_PER_REQUEST", "5000", ("JP_MAX_TAGS_PER_REQUEST", "1000")),
    (TagSettings, "JP_MAX_TAG_VALUE", "70000", ("JP_MAX_TAG_VALUE", "65536")),
]
BAD_IDS = [f"{variable}={value}" for _, variable, value, _ in BAD]


def values_of(settings: Any) -> list[object]:
    return list(settings.model_dump().values())


@pytest.mark.parametrize(("cls", "variable", "raw", "expected"), VARIABLES, ids=IDS)
def test_each_variable_is_read_from_the_environment(
    clean_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    cls: type[Any],
    variable: str,
    raw: str,
    expected: object,
) -> None:
    assert expected not in values_of(cls())  # not the default: the variable made the difference
    monkeypatch.setenv(variable, raw)
    assert expected in values_of(cls())


@pytest.mark.parametrize(("cls", "variable", "raw", "expected"), VARIABLES, ids=IDS)
def test_each_variable_is_read_from_the_settings_file(
    clean_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    cls: type[Any],
    variable: str,
    raw: str,
    expected: object,
) -> None:
    path = clean_environment / "jp.env"
    path.write_text(f"# a comment\n{variable}={raw}\n")
    monkeypatch.setenv("JP_SETTINGS_FILE", str(path))
    assert expected in values_of(cls())


def test_the_environment_wins_over_the_settings_file(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = clean_environment / "jp.env"
    path.write_text("JP_PORT=9001\nJP_HOST=10.0.0.1\n")
    monkeypatch.setenv("JP_SETTINGS_FILE", str(path))
    monkeypatch.setenv("JP_PORT", "9002")
    server = ServerSettings()
    assert (server.port, server.host) == (9002, "10.0.0.1")


def test_one_settings_file_configures_every_class(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = clean_environment / "jp.env"
    path.write_text("".join(f"{variable}={raw}\n" for _, variable, raw, _ in VARIABLES))
    monkeypatch.setenv("JP_SETTINGS_FILE", str(path))
    settings = load_settings()
    for cls, variable, _, expected in VARIABLES:
        part = next(v for v in vars(settings).values() if isinstance(v, cls))
        assert expected in values_of(part), variable


@pytest.mark.parametrize(("cls", "variable", "raw", "words"), BAD, ids=BAD_IDS)
def test_bad_values_are_refused_naming_the_field(
    clean_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    cls: type[Any],
    variable: str,
    raw: str,
    words: tuple[str, ...],
) -> None:
    monkeypatch.setenv(variable, raw)
    with pytest.raises(ValidationError) as refused:
        cls()
    message = str(refused.value)
    assert all(word in message for word in words), message


def test_bad_values_in_the_settings_file_are_refused_too(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = clean_environment / "jp.env"
    path.write_text("JP_PORT=70000\n")
    monkeypatch.setenv("JP_SETTINGS_FILE", str(path))
    with pytest.raises(ValidationError, match="65535"):
        load_settings()


def test_a_missing_settings_file_is_no_settings(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Documented behaviour of pydantic-settings: a dotenv file that is absent is skipped.
    monkeypatch.setenv("JP_SETTINGS_FILE", str(clean_environment / "absent.env"))
    assert ServerSettings().port == 8901


@pytest.mark.parametrize(
    ("raw", "size"),
    [
        ("10G", 10 * GIB),
        ("10gib", 10 * GIB),
        ("512M", 512 * 1024**2),
        ("2KiB", 2048),
        ("1000", 1000),
    ],
)
def test_file_size_accepts_iec_units_as_operators_write_them(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch, raw: str, size: int
) -> None:
    monkeypatch.setenv("JP_MAX_FILE_SIZE", raw)
    assert size in values_of(StorageSettings())


def test_defaults_live_under_jp_home(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = load_settings()
    assert default.home == Path("var")
    assert default.database_url == "sqlite:///var/jp.sqlite"
    assert default.storage_root == Path("var/files")
    assert default.token_key_path == Path("var/token.key")

    home = clean_environment / "home"
    monkeypatch.setenv("JP_HOME", str(home))
    settings = load_settings()
    assert settings.home == home
    assert settings.database_url == f"sqlite:///{home / 'jp.sqlite'}"
    assert settings.storage_root == home / "files"
    assert settings.token_key_path == home / "token.key"


def test_explicit_paths_win_over_jp_home(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JP_HOME", str(clean_environment / "home"))
    monkeypatch.setenv("JP_DATABASE_URL", "sqlite:////elsewhere/jp.sqlite")
    monkeypatch.setenv("JP_STORAGE_ROOT", "/elsewhere/files")
    monkeypatch.setenv("JP_TOKEN_KEY_PATH", "/elsewhere/token.key")
    settings = load_settings()
    assert settings.database_url == "sqlite:////elsewhere/jp.sqlite"
    assert settings.storage_root == Path("/elsewhere/files")
    assert settings.token_key_path == Path("/elsewhere/token.key")


def test_settings_are_frozen(clean_environment: Path) -> None:
    with pytest.raises(ValidationError, match="frozen"):
        ServerSettings().port = 1  # type: ignore[misc]


def test_the_settings_hold_one_instance_of_each_class(clean_environment: Path) -> None:
    settings = Settings()
    kinds = {type(v) for v in vars(settings).values()}
    assert kinds >= {
        ServerSettings,
        DatabaseSettings,
        StorageSettings,
        AuthSettings,
        DoorSettings,
        TagSettings,
    }
