"""What only the remote backends have: settings from JP_S3_* / JP_FTP_*, reconnecting FTP,
S3 checksum and expiry arithmetic."""

from __future__ import annotations

import asyncio
import base64
import ftplib
import hashlib
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pyftpdlib.handlers import FTPHandler

from jp_primary.backends.base import StorageBackend
from jp_primary.backends.ftp import FTPBackend
from jp_primary.backends.ftp_pool import FTPOptions
from jp_primary.backends.registry import create_backend
from jp_primary.backends.s3 import S3Backend
from jp_primary.backends.s3_support import checksum_b64, checksum_hex, seconds_until
from jp_primary.config import Settings, StorageSettings
from jp_primary.errors import ConfigurationError

from .conftest import FTPSite
from .servers import BUCKET, S3_KEY, S3_SECRET, Seaweed, ftp_server

pytestmark = pytest.mark.anyio


async def one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def settings_for(backend: str) -> Settings:
    return Settings(storage=StorageSettings(backend=backend))


def set_s3_env(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    for name, value in {
        "ENDPOINT_URL": endpoint,
        "BUCKET": BUCKET,
        "REGION": "us-east-1",
        "ACCESS_KEY_ID": S3_KEY,
        "SECRET_ACCESS_KEY": S3_SECRET,
        "ADDRESSING_STYLE": "path",
        "CHECKSUM": "when_supported",
        "PREFIX": "from-env",
    }.items():
        monkeypatch.setenv(f"JP_S3_{name}", value)


async def test_s3_backend_from_settings(monkeypatch: pytest.MonkeyPatch, seaweed: Seaweed) -> None:
    set_s3_env(monkeypatch, seaweed.endpoint)
    backend = create_backend(settings_for("s3"))
    assert isinstance(backend, S3Backend)
    try:
        await backend.check()
        stored = await backend.put_stream("k", one(b"via env"), max_size=100)
        assert stored.sha256 == hashlib.sha256(b"via env").hexdigest()
    finally:
        await backend.close()


@pytest.mark.parametrize(
    ("name", "value"),
    [("PART_SIZE", "1048576"), ("ADDRESSING_STYLE", "sideways"), ("BOGUS", "1")],
)
def test_bad_s3_settings_stop_the_start(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    set_s3_env(monkeypatch, "http://127.0.0.1:1")
    monkeypatch.setenv(f"JP_S3_{name}", value)
    with pytest.raises(ConfigurationError, match=name.lower()):
        create_backend(settings_for("s3"))


async def test_ftp_backend_from_settings(
    monkeypatch: pytest.MonkeyPatch, ftps_site: FTPSite, tls_pem: Path
) -> None:
    monkeypatch.setenv("JP_FTP_URL", ftps_site.url("from-env"))
    monkeypatch.setenv("JP_FTP_CA_FILE", str(tls_pem))
    backend = create_backend(settings_for("ftp"))
    assert isinstance(backend, FTPBackend)
    try:
        await backend.put_stream("a/b", one(b"over tls"), max_size=100)
    finally:
        await backend.close()
    assert (ftps_site.root / "from-env" / "a" / "b").read_bytes() == b"over tls"


@pytest.mark.parametrize("url", ["http://h/x", "ftp:///nohost", "sftp://u@h/x"])
def test_bad_ftp_url_stops_the_start(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("JP_FTP_URL", url)
    with pytest.raises(ConfigurationError, match="url"):
        create_backend(settings_for("ftp"))


def test_ftp_url_parts_are_unquoted() -> None:
    options = FTPOptions(url="ftps://us%40er:p%2Fw%3A@example.org:2121/jp/fi%20les/")
    assert (options.tls, options.base) == (True, "jp/fi les")  # RFC 1738: from the login dir
    backend = FTPBackend(options)
    assert (backend.pool.user, backend.pool.password) == ("us@er", "p/w:")
    assert (backend.pool.host, backend.pool.port) == ("example.org", 2121)
    assert backend.pool.path("x/y") == "jp/fi les/x/y"
    with pytest.raises(ValueError, match="key"):
        backend.pool.path("../escape")


async def test_ftp_reconnects_after_a_dropped_control_connection(ftp_site: FTPSite) -> None:
    backend = FTPBackend(FTPOptions(url=ftp_site.url("reconnect"), timeout=5))
    try:
        await backend.put_stream("f", one(b"before"), max_size=100)
        assert backend.pool._idle, "the connection went back to the pool"
        for conn in backend.pool._idle:
            assert conn.sock is not None
            conn.sock.shutdown(socket.SHUT_RDWR)  # as if the server had hung up
        info = await backend.stat("f")
        assert info.size == len(b"before")
        await backend.put_stream("g", one(b"after"), max_size=100)
        assert (ftp_site.root / "reconnect" / "g").read_bytes() == b"after"
    finally:
        await backend.close()


def test_checksum_encodings() -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    encoded = checksum_b64(digest)
    assert base64.b64decode(encoded) == bytes.fromhex(digest)
    assert checksum_hex(encoded) == digest
    assert checksum_hex(encoded + "-3") is None  # a multipart checksum of checksums
    assert checksum_hex(None) is None


def test_presign_lifetime_is_clamped() -> None:
    now = datetime.now(UTC)
    assert seconds_until(now - timedelta(hours=1), 600) == 1
    assert seconds_until(now + timedelta(days=30), 600) == 600
    assert 290 <= seconds_until(now + timedelta(seconds=300), 600) <= 300


async def test_ftp_stat_without_mlst_uses_size_and_mdtm(tmp_path: Path) -> None:
    commands = {name: v for name, v in FTPHandler.proto_cmds.items() if name != "MLST"}
    server = ftp_server(tmp_path, proto_cmds=commands)
    site = FTPSite(server, tmp_path, tls=False)
    backend = FTPBackend(FTPOptions(url=site.url("old"), timeout=5))
    try:
        await backend.put_stream("f", one(b"12345"), max_size=100)
        with pytest.raises(ftplib.error_perm, match="^500"):  # this server really lacks MLST
            backend.pool.run(lambda conn: conn.sendcmd("MLST old/f"))
        info = await backend.stat("f")
        assert info.size == 5
        assert info.modified is not None
        assert abs(info.modified - datetime.now(UTC)) < timedelta(hours=1)
        with pytest.raises(FileNotFoundError):
            await backend.stat("missing")
    finally:
        await backend.close()
        server.stop()


async def test_network_calls_leave_the_event_loop_free(remote_backend: StorageBackend) -> None:
    """The stream below never yields to the loop itself: the ticker can only run while the
    backend waits for its worker threads."""
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(12):
            yield b"x" * (1024 * 1024)

    task = asyncio.create_task(ticker())
    try:
        await remote_backend.put_stream("loop/free", chunks(), max_size=64 * 1024 * 1024)
        during_put = ticks
        assert [c async for c in remote_backend.read("loop/free", 0, 10)] == [b"x" * 10]
    finally:
        done.set()
        await task
    assert during_put > 0
    assert ticks > during_put
