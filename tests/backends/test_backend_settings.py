"""Backend options are settings like any other: JP_S3_* and JP_FTP_* from the environment or
the JP_SETTINGS_FILE file, unknown names refused in either (defect 16 of the hardening issue)."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest

from jp_primary.backends.ftp import FTPBackend
from jp_primary.backends.registry import create_backend
from jp_primary.backends.s3 import S3Backend
from jp_primary.config import Settings, StorageSettings
from jp_primary.errors import ConfigurationError
from tests.helpers import ALICE, Api, register_job

from .conftest import FTPSite
from .servers import BUCKET, S3_KEY, S3_SECRET, Seaweed, s3_client


def settings_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lines: dict[str, str]) -> Path:
    """A JP_SETTINGS_FILE holding ``lines`` and nothing of the backends in the environment."""
    for name in [n for n in os.environ if n.startswith(("JP_S3_", "JP_FTP_"))]:
        monkeypatch.delenv(name)
    path = tmp_path / "jp.env"
    path.write_text("".join(f"{name}={value}\n" for name, value in lines.items()))
    monkeypatch.setenv("JP_SETTINGS_FILE", str(path))
    return path


def s3_lines(endpoint: str, prefix: str) -> dict[str, str]:
    return {
        "JP_S3_ENDPOINT_URL": endpoint,
        "JP_S3_BUCKET": BUCKET,
        "JP_S3_ACCESS_KEY_ID": S3_KEY,
        "JP_S3_SECRET_ACCESS_KEY": S3_SECRET,
        "JP_S3_PREFIX": prefix,
        "JP_S3_MAX_ATTEMPTS": "1",
    }


@pytest.mark.parametrize("kind", ["ftp", "s3"])
def test_defect_16_backend_options_from_the_settings_file(
    kind: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    make_api: Callable[..., Api],
) -> None:
    """The service, on both databases, stores through a backend configured only in the file."""
    area = f"file-{secrets.token_hex(4)}"
    if kind == "ftp":
        site: FTPSite = request.getfixturevalue("ftp_site")
        lines = {"JP_STORAGE_BACKEND": "ftp", "JP_FTP_URL": site.url(area)}
    else:
        seaweed: Seaweed = request.getfixturevalue("seaweed")
        lines = {"JP_STORAGE_BACKEND": "s3", **s3_lines(seaweed.endpoint, area)}
    settings_file(monkeypatch, tmp_path, lines)
    api = make_api()  # the storage backend's name also comes from the file
    assert api.settings.storage.backend == kind
    key = register_job(api)
    put = api.client.put(
        f"/v1/jobs/{key}/files/osb", params={"name": "n"}, content=b"via file",
        headers=api.auth(ALICE),
    )  # fmt: skip
    assert put.status_code == 201, put.text
    if kind == "ftp":
        stored = [p for p in (site.root / area).rglob("*") if p.is_file()]
        assert [p.read_bytes() for p in stored] == [b"via file"]
    else:
        listed = s3_client(seaweed.endpoint).list_objects_v2(Bucket=BUCKET, Prefix=f"{area}/")
        assert [item["Size"] for item in listed["Contents"]] == [len(b"via file")]
    got = api.client.get(f"/v1/jobs/{key}/files/osb", params={"name": "n"}, headers=api.auth(ALICE))
    assert hashlib.sha256(got.content).hexdigest() == hashlib.sha256(b"via file").hexdigest()


@pytest.mark.parametrize(
    ("kind", "bad"),
    [("s3", "JP_S3_BUKET"), ("ftp", "JP_FTP_TIMEOUTS"), ("ftp", "jp_ftp_max_conections")],
)
def test_defect_16_unknown_option_in_the_settings_file_stops_the_start(
    kind: str, bad: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lines = s3_lines("http://127.0.0.1:1", "p") if kind == "s3" else {"JP_FTP_URL": "ftp://h/x"}
    settings_file(monkeypatch, tmp_path, lines | {bad: "1"})
    with pytest.raises(ConfigurationError, match=bad.upper()):
        create_backend(Settings(storage=StorageSettings(backend=kind)))


def test_defect_16_unknown_option_in_the_environment_stops_the_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings_file(monkeypatch, tmp_path, {"JP_FTP_URL": "ftp://h/x"})
    monkeypatch.setenv("JP_FTP_CA_FIEL", "/etc/ssl/ca.pem")
    with pytest.raises(ConfigurationError, match="JP_FTP_CA_FIEL"):
        create_backend(Settings(storage=StorageSettings(backend="ftp")))


@pytest.mark.anyio
async def test_defect_16_environment_wins_over_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings_file(monkeypatch, tmp_path, {"JP_FTP_URL": "ftp://h/from-file", "JP_FTP_TIMEOUT": "7"})
    monkeypatch.setenv("JP_FTP_URL", "ftp://h/from-env")
    backend = create_backend(Settings(storage=StorageSettings(backend="ftp")))
    assert isinstance(backend, FTPBackend)
    assert (backend.options.base, backend.options.timeout) == ("from-env", 7.0)
    await backend.close()


@pytest.mark.anyio
async def test_s3_options_from_the_file_reach_the_client(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings_file(monkeypatch, tmp_path, s3_lines("http://127.0.0.1:1", "pre") | {
        "JP_S3_REGION": "eu-west-3", "JP_S3_PART_SIZE": str(16 * 1024 * 1024)})  # fmt: skip
    backend = create_backend(Settings(storage=StorageSettings(backend="s3")))
    assert isinstance(backend, S3Backend)
    assert backend.client.meta.region_name == "eu-west-3"
    assert (backend.options.prefix, backend.options.part_size) == ("pre", 16 * 1024 * 1024)
    await backend.close()
