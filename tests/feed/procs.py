"""Real processes for the feed tests: the receiver (``jp_primary.testing.receiver``) and
``jp-primary feed-worker``, each startable, killable and restartable."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from jp_primary.auth.identity import Role
from jp_primary.testing.receiver import FeedLog, read_log
from tests.crash.server import ServiceProcess, free_port
from tests.helpers import ALICE, new_jobid

# Short leases and retries keep the fault tests fast; the defaults are for production.
FAST_FEEDS = {
    "JP_FEED_LEASE_SECONDS": "3",
    "JP_FEED_DELIVERY_TIMEOUT": "1",
    "JP_FEED_RETRY_BASE": "0.2",
    "JP_FEED_RETRY_CAP": "1",
    "JP_FEED_POLL_INTERVAL": "0.05",
}


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g} s waiting until {what}")


class Receiver:
    """The receiving index server, in its own process, on one port for its whole life."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.log = folder / "received.jsonl"
        self.out = folder / "receiver.out"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/receive"

    def start(self, mode: str = "ok") -> None:
        command = [sys.executable, "-m", "jp_primary.testing.receiver"]
        command += ["--port", str(self.port), "--log", str(self.log), "--mode", mode]
        with self.out.open("ab") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        wait_until(self._listening, "the receiver listens", 20)

    def _listening(self) -> bool:
        try:
            httpx.get(f"http://127.0.0.1:{self.port}/")  # any answer (501) will do
        except httpx.TransportError:
            return False
        return True

    def set_mode(self, mode: str, delay: float = 0.0) -> None:
        answer = httpx.post(
            f"http://127.0.0.1:{self.port}/mode", json={"mode": mode, "delay": delay}
        )
        answer.raise_for_status()

    def stop(self) -> None:
        """Down: nothing listens on the port until ``start``."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def feeds(self) -> dict[str, FeedLog]:
        return read_log(self.log)

    def feed(self, feed_id: str) -> FeedLog:
        return self.feeds().get(feed_id) or FeedLog()


class FeedWorker:
    """``jp-primary feed-worker`` on a home and database."""

    def __init__(self, home: Path, database_url: str, **settings: str) -> None:
        self.home = home
        self.database_url = database_url
        self.settings = settings
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JP_")}
        env.update({"JP_HOME": str(self.home), "JP_DATABASE_URL": self.database_url})
        env.update(self.settings)
        self.home.mkdir(parents=True, exist_ok=True)
        with (self.home / "feed-worker.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jp_primary.cli", "feed-worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)
            self.proc = None


INDEXER = "/DC=org/DC=example/CN=index.example.org"
REQUESTED = ["tag:color", "tag:n", "system:jobId"]


class Client:
    """The calls these tests make to one service process."""

    def __init__(self, service: ServiceProcess) -> None:
        self.service = service
        self.http = httpx.Client(base_url=service.base_url, timeout=30)
        self.alice = service.auth(ALICE)
        self.indexer = service.auth(INDEXER, Role.INDEXER)

    def job(self) -> str:
        answer = self.http.post("/v1/jobs", json={"jobid": new_jobid()}, headers=self.alice)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["key"])

    def tag(self, key: str, name: str, value: str) -> None:
        answer = self.http.post(
            f"/v1/jobs/{key}/tags", json={"name": name, "value": value}, headers=self.alice
        )
        assert answer.status_code == 201, answer.text

    def subscribe(self, **body: Any) -> str:
        payload = {"attributes": REQUESTED, "history": True, "continuous": True, **body}
        answer = self.http.post("/v1/feeds", json=payload, headers=self.indexer)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["feed_id"])

    def state(self, feed_id: str) -> dict[str, Any]:
        answer = self.http.get(f"/v1/feeds/{feed_id}", headers=self.indexer)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def expected(self, keys: list[str]) -> set[tuple[str, int]]:
        """(jobid, seq) of every requested value of these jobs: what the feed must deliver."""
        found: set[tuple[str, int]] = set()
        for key in keys:
            answer = self.http.get(
                f"/v1/jobs/{key}/attributes",
                params=[("name", n) for n in REQUESTED],
                headers=self.alice,
            )
            body = answer.json()
            found |= {(body["jobid"], v["seq"]) for v in body["values"]}
        return found
