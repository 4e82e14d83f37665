"""Benchmark: job registrations per second through the real HTTP server, against a bare route.

For each database (embedded SQLite; PostgreSQL too with ``--database-url``) and each worker
count, two servers run one after the other with identical uvicorn settings: the bare app
(``bench/bare_app.py``: the production app plus ``POST /bench/constant`` answering a constant)
and the production app. ``wrk`` drives both with the same Lua script (``bench/register.lua``, a
new jobid per request, bearer token). The figure is production req/s divided by bare req/s from
the same run (target >= 0.4); absolute numbers depend on the shared machine.

    .venv/bin/python bench/registrations.py                      # SQLite, 1 and 2 workers
    .venv/bin/python bench/registrations.py --duration 3 --workers 1     # quick run
    .venv/bin/python bench/registrations.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres   # + PostgreSQL

With ``--database-url`` a throwaway database is created on that server and dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from results import Figure, record
from serverctl import (
    BARE_FACTORY,
    PROD_FACTORY,
    BenchHome,
    bench_home,
    cleanup_on_sigterm,
    require_tool,
    throwaway_postgres,
    uvicorn_server,
)
from sqlalchemy import create_engine, text

LUA = Path(__file__).resolve().parent / "register.lua"
REGISTER_PATH = "/v1/jobs"
BARE_PATH = "/bench/constant"
TARGET = 0.4


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int  # non-2xx/3xx answers plus socket errors and timeouts
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def run_wrk(url: str, token: str, args: argparse.Namespace, seconds: float) -> WrkResult:
    nonce = secrets.token_hex(2)
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        url,
        "--",
        nonce,
    ]
    env = {**os.environ, "JP_BENCH_TOKEN": token}
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, check=True, timeout=seconds + 60
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")
    data = json.loads(line.removeprefix("WRK_JSON "))
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors=errors,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
    )


def measure(
    home: BenchHome, factory: str, path: str, workers: int, args: argparse.Namespace
) -> tuple[WrkResult, int]:
    """wrk's result after a warm-up, and how many jobs the measured load added."""
    with uvicorn_server(home, factory, workers) as server:
        print(f"  ({factory} on {server.url}, pid {server.pid})", flush=True)
        if args.warmup > 0:
            run_wrk(server.url + path, home.token, args, args.warmup)
        before = count_jobs(home)
        result = run_wrk(server.url + path, home.token, args, args.duration)
        return result, count_jobs(home) - before


def count_jobs(home: BenchHome) -> int:
    url = home.env.get("JP_DATABASE_URL") or f"sqlite:///{home.path / 'jp.sqlite'}"
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM jobs")).scalar_one())
    finally:
        engine.dispose()


def describe(result: WrkResult) -> str:
    return (
        f"{result.rate:9.0f} req/s  ({result.requests} in {result.seconds:.1f} s, "
        f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, errors {result.errors})"
    )


def bench_database(label: str, database_url: str | None, args: argparse.Namespace) -> bool:
    """Runs every worker count against one database; False if any request failed."""
    ok = True
    with bench_home(database_url) as home:
        for workers in args.workers:
            bares, reals = [], []
            for _ in range(args.repeat):  # alternating, so slow phases of the machine hit both
                bares.append(measure(home, BARE_FACTORY, BARE_PATH, workers, args)[0])
                reals.append(measure(home, PROD_FACTORY, REGISTER_PATH, workers, args))
            bare = max(bares, key=lambda r: r.rate)
            real, stored = max(reals, key=lambda r: r[0].rate)
            ratio = real.rate / bare.rate
            verdict = "meets" if ratio >= TARGET else "BELOW"
            print(
                f"\n[{label}, --workers {workers}, wrk -t{args.threads} -c{args.connections}, "
                f"best of {args.repeat}]"
            )
            print(f"  bare POST {BARE_PATH}: {describe(bare)}")
            print(f"  POST {REGISTER_PATH}:        {describe(real)}")
            print(f"  jobs stored during the run: {stored} (wrk counted {real.requests} answers)")
            print(f"  ratio registrations / bare = {ratio:.2f}  ({verdict} target >= {TARGET})")
            failed = bool(real.errors or bare.errors or stored < real.requests)
            if failed:
                print("  ERROR: failed requests or fewer jobs stored than answers counted")
                ok = False
            what = f"POST /v1/jobs, {label.split(' ')[0]}, {workers} worker{'s' * (workers > 1)}"
            record(
                Figure("registrations", what,
                       round(real.rate, 1), "req/s", round(bare.rate, 1), round(ratio, 3),
                       f">= {TARGET}", ratio >= TARGET and not failed)
            )  # fmt: skip
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per app")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load before that")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--repeat", type=int, default=1, help="alternating rounds, best of")
    parser.add_argument(
        "--workers",
        type=lambda s: [int(w) for w in s.split(",")],
        default=[1, 2],
        help="comma-separated uvicorn worker counts (default 1,2)",
    )
    parser.add_argument(
        "--database-url",
        help="also run on PostgreSQL: a server URL (postgresql+psycopg://user@host:port/db); "
        "a throwaway database is created there and dropped afterwards",
    )
    parser.add_argument("--skip-sqlite", action="store_true", help="only run PostgreSQL")
    args = parser.parse_args()
    cleanup_on_sigterm()
    require_tool("wrk", "apt-get install -y wrk   (Debian/Ubuntu package `wrk`)")
    print(f"registrations benchmark, {os.cpu_count()} CPUs, {args.duration:g} s per measurement")
    ok = True
    if not args.skip_sqlite:
        ok &= bench_database("SQLite (embedded default)", None, args)
    if args.database_url:
        with throwaway_postgres(args.database_url) as url:
            ok &= bench_database("PostgreSQL", url, args)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
