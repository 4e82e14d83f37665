"""Clients of the storage benchmark: the service's API (httpx for the small calls, ``curl`` for
the bytes), the presigned POST with ``curl -F``, and py-spy attached to the service."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

FILE_CLASS = "osb"  # its plugin only lists tar archives: on random bytes it stops at once
SLOWEST = 2e6  # bytes/s: below this an upload counts as hung and is stopped


def curl(*args: str, max_seconds: float) -> tuple[int, str]:
    """Run curl quietly; its HTTP status and body."""
    out = subprocess.run(
        ["curl", "-sS", "-H", "Expect:", "--max-time", str(int(max_seconds)),
         "-w", "\n%{http_code}", *args],
        check=True, capture_output=True, text=True, timeout=max_seconds + 10,
    ).stdout  # fmt: skip
    body, _, status = out.rpartition("\n")
    return int(status), body


class Api:
    def __init__(self, url: str, token: str, size: int, first_job: int = 0) -> None:
        self.url = url
        self.size = size
        self.auth = f"Authorization: Bearer {token}"
        self.max_seconds = 60 + size / SLOWEST
        self.client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=self.max_seconds
        )
        self._jobs = first_job  # several clients of one service: give each its own range

    def new_job(self) -> str:
        self._jobs += 1
        unique = f"store{os.getpid():08d}{self._jobs:09d}"[:22]
        answer = self.client.post("/v1/jobs", json={"jobid": f"https://lb.example.org/{unique}"})
        answer.raise_for_status()
        return str(answer.json()["key"])

    def put_curl(self, source: Path) -> dict[str, Any]:
        """One-shot ``PUT /v1/jobs/{key}/files/osb?name=payload`` streamed by ``curl -T``."""
        url = f"{self.url}/v1/jobs/{self.new_job()}/files/{FILE_CLASS}?name=payload"
        status, body = curl(
            "-T", str(source), "-H", "Content-Type: application/octet-stream", "-H", self.auth,
            url, max_seconds=self.max_seconds,
        )  # fmt: skip
        if status != 201:
            raise RuntimeError(f"PUT answered {status}: {body[:500]}")
        return dict(json.loads(body))

    def two_phase(self, source: Path, sha256: str) -> dict[str, float]:
        """Start, ``PUT /v1/uploads/{id}`` (curl -T), commit: the one-shot PUT's two halves,
        timed apart (seconds per step)."""
        started = time.perf_counter()
        body = {"class": FILE_CLASS, "name": "payload", "size": self.size}
        answer = self.client.post(f"/v1/jobs/{self.new_job()}/uploads", json=body)
        answer.raise_for_status()
        ticket = answer.json()
        sending = time.perf_counter()
        status, text = curl(
            "-T", str(source), "-H", "Content-Type: application/octet-stream", "-H", self.auth,
            ticket["url"], max_seconds=self.max_seconds,
        )  # fmt: skip
        if status not in (200, 204):
            raise RuntimeError(f"PUT answered {status}: {text[:500]}")
        committing = time.perf_counter()
        if self.commit(ticket["upload_id"]).get("sha256") != sha256:
            raise RuntimeError("two-phase upload: the service stored something else")
        done = time.perf_counter()
        return {
            "start": sending - started,
            "bytes": committing - sending,
            "commit": done - committing,
        }

    def start_direct(self, sha256: str) -> dict[str, Any]:
        body = {"class": FILE_CLASS, "name": "payload", "size": self.size, "sha256": sha256}
        answer = self.client.post(
            f"/v1/jobs/{self.new_job()}/uploads", json=body | {"direct": True}
        )
        if answer.status_code != 201:
            raise RuntimeError(f"upload start answered {answer.status_code}: {answer.text[:500]}")
        ticket = dict(answer.json())
        if ticket.get("method") != "s3-post":
            raise RuntimeError(f"expected a presigned POST, got {ticket}")
        return ticket

    def commit(self, upload_id: str) -> dict[str, Any]:
        answer = self.client.post(f"/v1/uploads/{upload_id}/commit")
        if answer.status_code != 200:
            raise RuntimeError(f"commit answered {answer.status_code}: {answer.text[:500]}")
        return dict(answer.json())

    def close(self) -> None:
        self.client.close()


def curl_post_form(url: str, fields: dict[str, str], source: Path, max_seconds: float) -> None:
    """The presigned POST: policy fields as literal strings, then the file (S3 wants it last),
    streamed from disk by curl."""
    form = [arg for name, value in fields.items() for arg in ("--form-string", f"{name}={value}")]
    status, body = curl(*form, "-F", f"file=@{source}", url, max_seconds=max_seconds)
    if status not in (200, 201, 204):
        raise RuntimeError(f"presigned POST answered {status}: {body[:500]}")


def find_py_spy() -> str | None:
    """py-spy from the virtual environment this runs in, else from PATH."""
    candidate = Path(sys.executable).parent / "py-spy"
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


@contextlib.contextmanager
def profiled(pid: int, output: Path) -> Iterator[None]:
    """py-spy on ``pid`` while the block runs: wall-clock samples of every thread, idle ones
    included (``output``.txt, collapsed stacks, one line per stack with its sample count)."""
    command = [
        find_py_spy() or "py-spy", "record", "--pid", str(pid), "--rate", "50", "--idle",
        "--threads", "--format", "raw", "--output", f"{output}.txt",
    ]  # fmt: skip
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        try:
            spy.wait(timeout=60)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()


IDLE_LEAVES = ("_worker (concurrent/futures/thread.py", "Condition.wait (", "Queue.get (")


def _short(frame: str) -> str:
    """``fn (path/to/module.py:12)`` -> ``fn (module.py:12)``."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rpartition('/')[2]}" if where else name


def _where(frames: list[str]) -> str:
    """The innermost frame in jp_primary and, if deeper, the innermost frame of all."""
    leaf = _short(frames[-1]) if frames else "?"
    for frame in reversed(frames):
        if "jp_primary/" in frame:
            own = _short(frame)
            return own if own == leaf else f"{own} > {leaf}"
    return f"- > {leaf}"


def summarize_profile(raw: Path, rate: int = 50, top: int = 14) -> list[str]:
    """Seconds per (thread, place) from py-spy's raw output, idle pool threads left out; the
    place is the innermost frame of the service's own code and the innermost frame of all."""
    totals: dict[tuple[str, str], int] = {}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not count.isdigit() or len(frames) < 2 or frames[-1].startswith(IDLE_LEAVES):
            continue
        thread = re.sub(r"ThreadPoolExecutor-\d+_\d+", "boto3 transfer", frames[0])
        key = (thread.partition(": ")[2] or thread, _where(frames[1:]))
        totals[key] = totals.get(key, 0) + int(count)
    ranked = sorted(totals.items(), key=lambda item: -item[1])[:top]
    return [f"{n / rate:6.2f} s  {thread:19s} {where}" for (thread, where), n in ranked]
