"""A feed receiver for tests and benchmarks: an index server's push endpoint, switchable into
the faults real ones have, run as its own process.

``python -m jp_primary.testing.receiver --port P --log FILE`` answers ``POST /receive`` and
appends one JSON line per batch it got to FILE: ``{feed_id, batch, history_done, records, mode,
acked, overlap, at}``. ``POST /mode`` with ``{"mode": ..., "delay": s}`` switches how it answers:

- ``ok``: 200 (an acknowledgement) after ``delay`` seconds; ``garbage``: the same with a body
  that is not JSON (still an acknowledgement);
- ``error``: 500; ``slow``: waits ``delay`` seconds, then 200 (meant to be too late: the sender
  has given up by then, so it counts neither as acknowledged nor as in flight);
- ``hangup``: reads the batch and closes the connection without an answer.

"Down" is the process not running (stop it, start it again on the same port). ``overlap`` is
true when another batch of the same feed was still being received: a feed must never have two
batches in flight. :func:`read_log` and :func:`check_log` read and check such a log.
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

MODES = ("ok", "garbage", "error", "slow", "hangup")


class _State:
    def __init__(self, log: Path, summary: bool = False) -> None:
        self.log = log
        self.summary = summary
        self.mode = "ok"
        self.delay = 0.0
        self.lock = threading.Lock()
        self.in_flight: dict[str, int] = defaultdict(int)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # The answer's headers and body are two writes: with Nagle's algorithm the body waits for
    # the sender's delayed ACK of the headers (~40 ms a batch), which an index server answering
    # "at once" does not do (uvicorn, for one, sets TCP_NODELAY too).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        return

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path == "/mode":
            wanted = json.loads(body)
            with self.server.state.lock:
                self.server.state.mode = wanted["mode"]
                self.server.state.delay = float(wanted.get("delay", 0))
            self._answer(200, b"{}")
            return
        self._receive(body)

    def _receive(self, body: bytes) -> None:
        state = self.server.state
        try:
            # orjson: a benchmark's receiver must keep up with batches of thousands of values.
            batch = orjson.loads(body)
        except ValueError:
            self._answer(400, b'{"error": "not JSON"}')
            return
        feed_id = str(batch.get("feed_id"))
        with state.lock:
            mode, delay = state.mode, state.delay
            overlap = state.in_flight[feed_id] > 0
            counted = mode != "slow"
            state.in_flight[feed_id] += counted
        try:
            if mode == "slow":
                self._note(batch, mode, False, overlap)
                time.sleep(delay)
                self._answer(200, b'{"late": true}')
                return
            if delay and mode in {"ok", "garbage"}:
                time.sleep(delay)
            acked = mode in {"ok", "garbage"}
            self._note(batch, mode, acked, overlap)
            if mode == "hangup":
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            if mode == "error":
                self._answer(500, b'{"error": "induced"}')
            elif mode == "garbage":
                self._answer(200, b"\x00not json at all")
            else:
                self._answer(200, b'{"ok": true}')
        finally:
            with state.lock:
                state.in_flight[feed_id] -= counted

    def _note(self, batch: dict[str, Any], mode: str, acked: bool, overlap: bool) -> None:
        entry = dict(batch, mode=mode, acked=acked, overlap=overlap, at=time.time())
        if self.server.state.summary:  # benchmarks: how many jobs, which seqs, not the values
            records = entry.pop("records")
            entry["jobs"] = len(records)
            entry["seqs"] = [v["seq"] for r in records for v in r["values"]]
        line = orjson.dumps(entry) + b"\n"
        with self.server.state.lock, self.server.state.log.open("ab") as out:
            out.write(line)

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, state: _State) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.state = state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--mode", choices=MODES, default="ok")
    parser.add_argument(
        "--summary", action="store_true", help="log job counts and seqs instead of records"
    )
    args = parser.parse_args(argv)
    state = _State(args.log, args.summary)
    state.mode = args.mode
    server = _Server(args.port, state)
    print(f"receiving on http://127.0.0.1:{args.port}/receive", flush=True)
    server.serve_forever()
    return 0


# -- reading a log --------------------------------------------------------------------------------


@dataclass
class FeedLog:
    """What one feed's receiver saw."""

    deliveries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def acked(self) -> dict[int, dict[str, Any]]:
        """Batch number -> the batch as first acknowledged."""
        out: dict[int, dict[str, Any]] = {}
        for d in self.deliveries:
            if d["acked"]:
                out.setdefault(d["batch"], d)
        return out

    def values(self) -> set[tuple[str, int]]:
        """(jobid, seq) of every value in acknowledged batches."""
        return {
            (r["jobid"], v["seq"])
            for b in self.acked.values()
            for r in b["records"]
            for v in r["values"]
        }

    def jobs(self) -> set[str]:
        return {r["jobid"] for b in self.acked.values() for r in b["records"]}

    @property
    def history_done(self) -> bool:
        return any(b["history_done"] for b in self.acked.values())


def read_log(path: Path) -> dict[str, FeedLog]:
    feeds: dict[str, FeedLog] = defaultdict(FeedLog)
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                entry = json.loads(line)
                feeds[entry["feed_id"]].deliveries.append(entry)
    return dict(feeds)


def check_log(feed: FeedLog) -> list[str]:
    """What breaks the delivery contract in one feed's log (empty: nothing)."""
    problems: list[str] = []
    if any(d["overlap"] for d in feed.deliveries):
        problems.append("two batches of the feed were in flight at once")
    contents: dict[int, str] = {}
    for d in feed.deliveries:
        body = json.dumps([d["history_done"], d["records"]], sort_keys=True)
        if contents.setdefault(d["batch"], body) != body:
            problems.append(f"batch {d['batch']} was delivered with different contents")
    numbers = sorted(feed.acked)
    if numbers != list(range(1, len(numbers) + 1)):
        problems.append(f"acknowledged batch numbers are not 1..n: {numbers}")
    order = [d["batch"] for d in feed.deliveries]
    for before, after in zip(order, order[1:], strict=False):
        if after < before:
            problems.append(f"batch {after} came after batch {before}")
            break
    seqs = [v["seq"] for n in numbers for r in feed.acked[n]["records"] for v in r["values"]]
    if len(set(seqs)) != len(seqs):
        problems.append("a value came twice in acknowledged batches")
    return problems


if __name__ == "__main__":
    raise SystemExit(main())
