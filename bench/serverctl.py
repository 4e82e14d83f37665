"""Shared by the benchmarks: a throwaway service home, a throwaway PostgreSQL database, and
uvicorn servers on free loopback ports that are always stopped again."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

BENCH_DIR = Path(__file__).resolve().parent
PROD_FACTORY = "jp_primary.app:create_app"
BARE_FACTORY = "bare_app:create_bench_app"
SUBJECT = "/C=XX/O=Bench/CN=bench"
START_TIMEOUT = 60.0


def require_tool(name: str, install_hint: str) -> str:
    """The tool's path, or exit with a message saying how to install it."""
    path = shutil.which(name)
    if path is None:
        sys.exit(f"error: `{name}` is not installed; install it with: {install_hint}")
    return path


def cleanup_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so the ``finally`` blocks stop servers and remove files."""

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def throwaway_postgres(url: str) -> Iterator[str]:
    """A fresh database on the server of ``url``, dropped afterwards; yields its URL."""
    server = make_url(url)
    name = f"jp_bench_{secrets.token_hex(4)}"
    admin = create_engine(
        server.set(database=server.database or "postgres"), isolation_level="AUTOCOMMIT"
    )
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@dataclass(frozen=True)
class BenchHome:
    """A migrated service home (temporary JP_HOME) and a bearer token valid for it."""

    path: Path
    env: dict[str, str]
    token: str

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "jp_primary.cli", *args],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout.strip()


@contextlib.contextmanager
def bench_home(database_url: str | None = None, **settings: str) -> Iterator[BenchHome]:
    """A temporary JP_HOME under the temp dir, migrated; removed afterwards with all it holds."""
    path = Path(tempfile.mkdtemp(prefix="jp-bench-home-"))
    try:
        env = {**os.environ, "JP_HOME": str(path), **settings}
        env.pop("JP_SETTINGS_FILE", None)
        if database_url:
            env["JP_DATABASE_URL"] = database_url
        else:
            env.pop("JP_DATABASE_URL", None)
        home = BenchHome(path, env, "")
        home.cli("migrate")
        yield BenchHome(path, env, home.cli("token", "--subject", SUBJECT))
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class Server:
    process: subprocess.Popen[bytes]
    url: str

    @property
    def pid(self) -> int:
        return self.process.pid


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited with status {server.process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/healthz", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the server did not answer /healthz within {START_TIMEOUT:.0f} s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's own process group (it and its workers), SIGKILL if it lingers."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    # Workers of a killed supervisor may outlive it for a moment: end what is left of the group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def uvicorn_server(home: BenchHome, factory: str, workers: int = 1) -> Iterator[Server]:
    """uvicorn with the same settings for every app: default loop and HTTP implementation
    (uvloop + httptools when installed), no access log, as ``jp-primary serve`` runs it."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--app-dir",
        str(BENCH_DIR),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    log = (home.path / f"server-{port}.log").open("wb")
    process = subprocess.Popen(
        command, env=home.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        server = Server(process, f"http://127.0.0.1:{port}")
        _wait_ready(server)
        yield server
    finally:
        stop_server(process)
        log.close()
