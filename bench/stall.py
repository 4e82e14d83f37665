"""Hold many stalled connections open against a server: the slow-client attack of bench/load.py.

Each connection sends the start of a request (the request line and one header, never the blank
line that ends the headers) and then nothing. A connection the server closes is counted and
opened again after a short pause, so the pressure stays at ``--count`` for the whole run, as an
attacker would keep it. The process raises its own open-file limit to fit.

    python bench/stall.py --port 8901 --count 1000

It prints ``READY {json}`` once the first round of connections is open (or has failed), then
holds them until its standard input is closed (or a line arrives on it), SIGTERM or SIGINT, and
prints ``STALL_JSON {json}``: connections opened in all, connect failures, connections the
server closed, how long the server let them stall before closing (median, max), and how many
were open at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import signal
import statistics
import sys
import time

PARTIAL_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Stalled: "
REOPEN_PAUSE = 0.2  # seconds before a closed connection is opened again
CONNECT_TIMEOUT = 10.0


def raise_open_file_limit(needed: int) -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to at least ``needed`` (within the hard limit); the new
    (soft, hard) pair."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


class Staller:
    def __init__(self, host: str, port: int, count: int, reopen: bool) -> None:
        self.host, self.port, self.count, self.reopen = host, port, count, reopen
        self.opened = 0
        self.connect_failures = 0
        self.open_now = 0
        self.stall_seconds: list[float] = []  # how long each connection the server closed lived
        self.stopping = asyncio.Event()
        self.first_round = 0  # connections whose first attempt has finished (opened or failed)
        self.first_round_done = asyncio.Event()
        self.errors: dict[str, int] = {}

    def _first_attempt_finished(self, first: bool) -> None:
        if first:
            self.first_round += 1
            if self.first_round == self.count:
                self.first_round_done.set()

    async def hold_one(self, gate: asyncio.Semaphore) -> None:
        first = True
        while not self.stopping.is_set():
            try:
                async with gate:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(self.host, self.port), CONNECT_TIMEOUT
                    )
                    writer.write(PARTIAL_REQUEST)
                    await writer.drain()
            except (OSError, TimeoutError) as error:
                name = type(error).__name__
                self.errors[name] = self.errors.get(name, 0) + 1
                self.connect_failures += 1
                self._first_attempt_finished(first)
                first = False
                if not self.reopen:
                    return
                await asyncio.sleep(REOPEN_PAUSE)
                continue
            self.opened += 1
            self.open_now += 1
            self._first_attempt_finished(first)
            first = False
            started = time.monotonic()
            closed = asyncio.ensure_future(reader.read(65536))
            stop = asyncio.ensure_future(self.stopping.wait())
            await asyncio.wait({closed, stop}, return_when=asyncio.FIRST_COMPLETED)
            self.open_now -= 1
            if closed.done():  # the server answered (e.g. 408) or closed the connection
                self.stall_seconds.append(time.monotonic() - started)
                stop.cancel()
            else:
                closed.cancel()
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            if not self.reopen:
                return
            if not self.stopping.is_set():
                await asyncio.sleep(REOPEN_PAUSE)

    def summary(self) -> dict[str, object]:
        closed = sorted(self.stall_seconds)
        return {
            "target": self.count,
            "opened": self.opened,
            "connect_failures": self.connect_failures,
            "connect_errors": self.errors,
            "closed_by_server": len(closed),
            "stall_median_s": round(statistics.median(closed), 2) if closed else None,
            "stall_max_s": round(closed[-1], 2) if closed else None,
            "open_at_end": self.open_now,
        }


async def run(args: argparse.Namespace) -> dict[str, object]:
    staller = Staller(args.host, args.port, args.count, not args.no_reopen)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, staller.stopping.set)
    gate = asyncio.Semaphore(args.connect_concurrency)
    tasks = [asyncio.ensure_future(staller.hold_one(gate)) for _ in range(args.count)]
    await staller.first_round_done.wait()
    ready = {"open": staller.open_now, "connect_failures": staller.connect_failures}
    print("READY " + json.dumps(ready), flush=True)

    def stdin_ended() -> None:
        loop.remove_reader(sys.stdin.fileno())
        staller.stopping.set()

    loop.add_reader(sys.stdin.fileno(), stdin_ended)
    await staller.stopping.wait()
    summary = staller.summary()  # before the connections are closed by us
    await asyncio.gather(*tasks, return_exceptions=True)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, default=1000, help="connections held (default 1000)")
    parser.add_argument("--connect-concurrency", type=int, default=100)
    parser.add_argument("--no-reopen", action="store_true", help="do not reopen closed ones")
    args = parser.parse_args()
    soft, _ = raise_open_file_limit(args.count + 256)
    if soft != resource.RLIM_INFINITY and soft < args.count + 16:
        print(f"error: the open-file limit ({soft}) is below {args.count} connections", flush=True)
        return 1
    summary = asyncio.run(run(args))
    print("STALL_JSON " + json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
