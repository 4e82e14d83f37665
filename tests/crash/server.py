"""``jp-primary serve`` as a real subprocess on loopback, which a test can SIGKILL and restart.

``ServiceProcess(home, database_url)`` runs the service exactly as an operator would (the CLI,
uvicorn, one worker) with its files and signing key under ``home``. ``start()`` waits for
``/healthz``; ``kill()`` sends SIGKILL, so nothing in the service gets a chance to clean up;
``restart()`` starts a new process on the same home and database. Each start takes a fresh free
port (a killed listener's port may linger), so read ``base_url`` after every restart.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from jp_primary.auth.identity import Role
from jp_primary.auth.tokens import ServiceTokens, load_or_create_key

STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _child_environment(home: Path, database_url: str, settings: dict[str, str]) -> dict[str, str]:
    # Inherited JP_* variables (a settings file, another backend) must not leak into the child.
    env = {k: v for k, v in os.environ.items() if not k.startswith("JP_")}
    env.update({"JP_HOME": str(home), "JP_DATABASE_URL": database_url, **settings})
    return env


class ServiceProcess:
    """One ``jp-primary serve`` at a time on a fixed home and database."""

    def __init__(self, home: Path, database_url: str, **settings: str) -> None:
        self.home = home
        self.database_url = database_url
        self.settings = settings
        self.home.mkdir(parents=True, exist_ok=True)
        self.tokens = ServiceTokens(load_or_create_key(home / "token.key"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def storage_root(self) -> Path:
        return self.home / "files"

    @property
    def log_path(self) -> Path:
        return self.home / f"serve-{self.starts}.log"

    def auth(self, subject: str, *roles: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.issue(subject, roles)}"}

    def client(self, timeout: float = 60.0) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=timeout)

    def start(self) -> None:
        if self.proc is not None:
            raise RuntimeError("the service is already running")
        self.starts += 1
        self.port = free_port()
        command = [sys.executable, "-m", "jp_primary.cli", "serve"]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        # The log goes to a file, not a pipe: a chatty server never blocks on a full pipe.
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                command,
                env=_child_environment(self.home, self.database_url, self.settings),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a kill reaches all it started
            )
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"jp-primary serve exited with {self.proc.returncode}: {self.log()}"
                )
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"jp-primary serve not healthy within {STARTUP_TIMEOUT}s: {self.log()}")

    def run_cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run another ``jp-primary`` command (gc, ...) on the same home and database."""
        return subprocess.run(
            [sys.executable, "-m", "jp_primary.cli", *args],
            env=_child_environment(self.home, self.database_url, self.settings),
            capture_output=True,
            text=True,
            timeout=STARTUP_TIMEOUT,
            check=False,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send ``sig`` to the service's process group and wait until the service is gone."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):  # already dead: wait() reaps it
            os.killpg(self.proc.pid, sig)
        self.proc.wait(timeout=30)
        self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM), SIGKILL if it does not end in time."""
        if self.proc is None:
            return
        try:
            self.kill(signal.SIGTERM)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)

    def __enter__(self) -> ServiceProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
