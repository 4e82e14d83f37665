"""The real ``jp-primary`` command line as subprocesses on loopback, for end-to-end tests.

``run_cli(env, "migrate")`` runs one command and returns its result; ``ServeProcess`` runs
``jp-primary serve`` with extra arguments (e.g. the TLS ones). ``launch()`` only starts the
process and ``wait_ready()`` polls ``/healthz``, so several servers can start side by side.
The output goes to a log file, which tests read to check that no credential was written.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

CLI = [sys.executable, "-m", "jp_primary.cli"]
STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli_environment(settings: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment without its JP_* variables, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JP_")}
    return env | dict(settings)


def run_cli(settings: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env=cli_environment(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class ServeProcess:
    """One ``jp-primary serve --host 127.0.0.1 --port <free> <args>`` with its own log file."""

    def __init__(
        self,
        settings: Mapping[str, str],
        log_path: Path,
        args: Sequence[str] = (),
        verify: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = dict(settings)
        self.log_path = log_path
        self.args = list(args)
        self.verify = verify  # the client context for the readiness probe; None → plain HTTP
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        scheme = "https" if self.verify is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def launch(self) -> None:
        command = [*CLI, "serve", "--host", "127.0.0.1", "--port", str(self.port), *self.args]
        # A file, not a pipe: a chatty server never blocks on a full pipe.
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                command,
                env=cli_environment(self.settings),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self) -> None:
        assert self.proc is not None, "launch() first"
        deadline = time.monotonic() + STARTUP_TIMEOUT
        verify: ssl.SSLContext | bool = self.verify if self.verify is not None else False
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"jp-primary serve exited with {self.proc.returncode}: {self.log()}"
                )
            try:
                if (
                    httpx.get(f"{self.base_url}/healthz", verify=verify, timeout=2).status_code
                    == 200
                ):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"jp-primary serve not ready within {STARTUP_TIMEOUT}s: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM to this process (by its own PID), SIGKILL if it does not end in time."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
