"""Real processes for the index server's end-to-end tests: primaries (``jp-primary serve``) and an
index server (``jp-primary index-server``) on loopback, each on a port it keeps across restarts
(the index's configuration names the primaries' URLs), killable with SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from jp_primary.auth.identity import Role
from jp_primary.auth.tokens import ServiceTokens, load_or_create_key

STARTUP_TIMEOUT = 60.0
CLI = [sys.executable, "-m", "jp_primary.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JP_")}
    env.update(settings)
    return env


class Process:
    """One server command on a fixed port; ``start`` waits for ``/healthz``."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], home: Path) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.home = home
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        # A server listening with TLS: how to check its certificate (and https:// in its URL).
        self.verify: ssl.SSLContext | None = None
        home.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"{'https' if self.verify else 'http'}://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.home / f"{self.name}-{self.starts}.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def start(self) -> None:
        assert self.proc is None, f"{self.name} is already running"
        self.starts += 1
        deadline = time.monotonic() + STARTUP_TIMEOUT
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.log()}")
            with contextlib.suppress(httpx.TransportError):
                health = httpx.get(f"{self.url}/healthz", timeout=2.0, verify=self.verify or True)
                if health.status_code == 200:
                    return
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"{self.name} not healthy within {STARTUP_TIMEOUT}s: {self.log()}")

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


class Primary(Process):
    """``jp-primary serve`` with fast push retries (the index server may be down for a while)."""

    def __init__(self, name: str, home: Path, database_url: str, **settings: str) -> None:
        env = clean_env(
            JP_HOME=str(home),
            JP_DATABASE_URL=database_url,
            JP_FEED_RETRY_BASE="0.2",
            JP_FEED_RETRY_CAP="1",
            **settings,
        )
        super().__init__(name, [], env, home)
        self.command = [*CLI, "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.tokens = ServiceTokens(load_or_create_key(home / "token.key"))

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args], env=self.env, capture_output=True, text=True, timeout=120, check=False
        )

    def auth(self, subject: str, *roles: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.issue(subject, roles)}"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60.0)


class IndexServer(Process):
    def __init__(self, home: Path, config: Callable[[IndexServer], str]) -> None:
        super().__init__("index", [], clean_env(JP_HOME=str(home)), home)
        self.config_path = home / "index.toml"
        self.config_path.write_text(config(self))
        self.command = [*CLI, "index-server", "--config", str(self.config_path)]
        self.tokens = ServiceTokens(load_or_create_key(home / "token.key"))

    def auth(self, subject: str, *roles: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.issue(subject, roles)}"}

    def query(self, subject: str, *roles: Role, **body: Any) -> list[dict[str, Any]]:
        """Every page of a query's answer."""
        jobs: list[dict[str, Any]] = []
        after = None
        while True:
            page_body = {**body, **({"after": after} if after else {})}
            response = httpx.post(
                f"{self.url}/v1/query", json=page_body, headers=self.auth(subject, *roles)
            )
            assert response.status_code == 200, response.text
            page = response.json()
            jobs += page["jobs"]
            if page["next"] is None:
                return jobs
            after = page["next"]

    def feeds(self) -> dict[str, dict[str, Any]]:
        response = httpx.get(f"{self.url}/v1/feeds", headers=self.auth("/CN=op", Role.ADMIN))
        assert response.status_code == 200, response.text
        return {f["name"]: f for f in response.json()["feeds"]}


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail saying ``what`` did not happen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout}s (last: {last!r})")
