"""Every documented ``JP_*`` variable sets its setting, from the environment and from the settings
file; a bad value is a one-line configuration error naming the variable (exit code 2)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jp_primary import cli
from jp_primary.config import SETTINGS_CLASSES, Settings, env_names

README = Path(__file__).resolve().parents[1] / "README.md"

# A valid value, different from the default, for every variable of the README's settings table.
SAMPLES = {
    "JP_HOME": "/srv/jp-home",
    "JP_DATABASE_URL": "postgresql+psycopg://jp@db.example.org/jp",
    "JP_DATABASE_POOL_SIZE": "3",
    "JP_DATABASE_QUERY_TIMEOUT": "2.5",
    "JP_HOST": "0.0.0.0",
    "JP_PORT": "9999",
    "JP_WORKERS": "3",
    "JP_PUBLIC_URL": "https://jp.example.org",
    "JP_STORAGE_BACKEND": "s3",
    "JP_STORAGE_ROOT": "/srv/jp-files",
    "JP_MAX_FILE_SIZE": "5G",
    "JP_UPLOAD_DEADLINE": "60",
    "JP_MAX_EXTRACTION_PROBLEMS": "7",
    "JP_MAX_VALUES_PER_FILE": "7",
    "JP_QUARANTINE_RETENTION_DAYS": "7",
    "JP_TOKEN_KEY_PATH": "/etc/jp/token.key",
    "JP_TOKEN_TTL": "60",
    "JP_POLICY_FILE": "/etc/jp/policy.toml",
    "JP_ISSUERS_FILE": "/etc/jp/issuers.toml",
    "JP_VOMS_DIR": "/etc/jp/vomsdir",
    "JP_VOMS_CA_DIR": "/etc/jp/certificates",
    "JP_TRUSTED_FRONTENDS": "10.0.0.1,10.1.0.0/24",
    "JP_FRONTEND_DN_HEADER": "X-Client-DN",
    "JP_MAX_JSON_BODY": "2MiB",
    "JP_MAX_BULK_BODY": "4MiB",
    "JP_MAX_HEADER_SIZE": "32KiB",
    "JP_HEADER_TIMEOUT": "5",
    "JP_BODY_TIMEOUT": "5",
    "JP_MAX_REQUESTS_IN_FLIGHT": "7",
    "JP_MAX_CONNECTIONS": "7",
    "JP_ACCESS_LOG": "1",
    "JP_FTPD_PUBLIC_URL": "ftp://door.example.org:8911",
    "JP_FTPD_HOST": "0.0.0.0",
    "JP_FTPD_PORT": "2121",
    "JP_FTPD_CERTFILE": "/etc/jp/door.pem",
    "JP_FTPD_KEYFILE": "/etc/jp/door.key",
    "JP_FTPD_PASSIVE_PORTS": "60000-60100",
    "JP_FTPD_MASQUERADE_ADDRESS": "203.0.113.7",
    "JP_MAX_TAGS_PER_REQUEST": "7",
    "JP_MAX_TAGS_PER_JOB": "7",
    "JP_MAX_TAG_VALUE": "7",
    "JP_FEED_WORKER": "0",
    "JP_FEED_DEFAULT_TTL": "60",
    "JP_FEED_MAX_TTL": "600",
    "JP_FEED_PURGE_GRACE": "5",
    "JP_FEED_LEASE_SECONDS": "5",
    "JP_FEED_DELIVERY_TIMEOUT": "2",
    "JP_FEED_RETRY_BASE": "0.5",
    "JP_FEED_RETRY_CAP": "5",
    "JP_FEED_BATCH_JOBS": "5",
    "JP_FEED_POLL_INTERVAL": "0.5",
}


def documented_variables() -> list[str]:
    """The variables of the README's settings table (first column), backend wildcards left out."""
    names: list[str] = []
    for line in README.read_text().splitlines():
        if not line.startswith("| `JP_"):
            continue
        first_cell = line.split("|")[1]
        names += [n for n in re.findall(r"`(JP_[A-Z0-9_]+\*?)`", first_cell) if "*" not in n]
    return names


DOCUMENTED = documented_variables()


def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("JP_"):
            monkeypatch.delenv(name)


def _changed(default: Settings, settings: Settings) -> dict[str, Any]:
    """``group.field`` -> new value, for every field that differs from ``default``."""
    now = settings.model_dump()
    before = default.model_dump()
    return {
        f"{group}.{field}": value
        for group, fields in now.items()
        for field, value in fields.items()
        if before[group][field] != value
    }


def _variable_of(dotted: str) -> str:
    group, field = dotted.split(".")
    cls = type(getattr(Settings(), group))
    return env_names(cls)[field]


def test_readme_table_is_found() -> None:
    # The parser must see the table; a renamed heading or format would make every check vacuous.
    assert len(DOCUMENTED) >= 35
    assert {"JP_DATABASE_URL", "JP_MAX_FILE_SIZE", "JP_FTPD_PUBLIC_URL"} <= set(DOCUMENTED)


def test_every_setting_is_documented() -> None:
    fields = {v for cls in SETTINGS_CLASSES for v in env_names(cls).values()}
    assert fields - set(DOCUMENTED) == set()
    assert set(DOCUMENTED) - fields == set()


@pytest.mark.parametrize("variable", DOCUMENTED)
def test_documented_variable_sets_its_field_from_environment(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clean_environment(monkeypatch)
    default = Settings()
    monkeypatch.setenv(variable, SAMPLES[variable])
    changed = _changed(default, Settings())
    assert changed, f"{variable} changed no setting"
    assert {_variable_of(dotted) for dotted in changed} == {variable}


@pytest.mark.parametrize("variable", DOCUMENTED)
def test_documented_variable_sets_its_field_from_settings_file(
    variable: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _clean_environment(monkeypatch)
    default = Settings()
    settings_file = tmp_path / "jp.env"
    settings_file.write_text(f"{variable}={SAMPLES[variable]}\n")
    monkeypatch.setenv("JP_SETTINGS_FILE", str(settings_file))
    changed = _changed(default, Settings())
    assert changed, f"{variable} in the settings file changed no setting"
    assert {_variable_of(dotted) for dotted in changed} == {variable}


def test_short_names(monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_environment(monkeypatch)
    for variable in ("JP_STORAGE_BACKEND", "JP_DATABASE_URL", "JP_FTPD_PUBLIC_URL"):
        monkeypatch.setenv(variable, SAMPLES[variable])
    monkeypatch.setenv("JP_MAX_FILE_SIZE", "1K")
    settings = Settings()
    assert settings.storage.backend == "s3"
    assert settings.storage.max_file_size == 1024
    assert settings.database.url == SAMPLES["JP_DATABASE_URL"]
    assert settings.database_url == SAMPLES["JP_DATABASE_URL"]
    assert settings.door.public_url == SAMPLES["JP_FTPD_PUBLIC_URL"]


def test_convenience_properties_fall_back_to_home(monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_environment(monkeypatch)
    monkeypatch.setenv("JP_HOME", "/srv/jp")
    settings = Settings()
    assert settings.database.url is None
    assert settings.database_url == "sqlite:////srv/jp/jp.sqlite"
    assert settings.storage_root == Path("/srv/jp/files")
    assert settings.token_key_path == Path("/srv/jp/token.key")


def test_defect_bad_setting_value_crashes_with_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _clean_environment(monkeypatch)
    monkeypatch.setenv("JP_PORT", "abc")
    monkeypatch.setenv("JP_WORKERS", "0")
    assert cli.main(["migrate"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("jp-primary: configuration error: JP_PORT: ")
    assert "valid integer" in lines[0]
    assert lines[1].startswith("jp-primary: configuration error: JP_WORKERS: ")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("JP_MAX_FILE_SIZE", "lots"),
        ("JP_DATABASE_POOL_SIZE", "0"),
        ("JP_DATABASE_QUERY_TIMEOUT", "0"),
        ("JP_FTPD_PORT", "70000"),
        ("JP_MAX_TAG_VALUE", "x"),
    ],
)
def test_defect_bad_setting_value_names_the_variable(
    variable: str,
    value: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    # From the environment and from the settings file, prefixed and aliased fields alike.
    _clean_environment(monkeypatch)
    monkeypatch.setenv(variable, value)
    assert cli.main(["migrate"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"jp-primary: configuration error: {variable}: ")

    _clean_environment(monkeypatch)
    settings_file = tmp_path / "jp.env"
    settings_file.write_text(f"{variable}={value}\n")
    monkeypatch.setenv("JP_SETTINGS_FILE", str(settings_file))
    assert cli.main(["migrate"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"jp-primary: configuration error: {variable}: ")


def test_defect_bad_setting_value_exit_code_of_the_command(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("JP_")}
    env.update({"JP_PORT": "abc", "JP_HOME": str(tmp_path)})
    done = subprocess.run(
        [sys.executable, "-m", "jp_primary.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("jp-primary: configuration error: JP_PORT: ")
