"""End to end through the reference index server: jobs registered on a primary storage while an
index server is subscribed from the start; how long after the last commit the index has them
all, and the index's query latency.

    .venv/bin/python bench/index.py [--jobs 100000] [--index-database sqlite|postgres] [--quick]

A primary (`jp-primary serve`, PostgreSQL, its push-feed worker on) and an index server
(`jp-primary index-server`, push feed with history and continuous, SQLite or PostgreSQL) run as
real processes. The load: jobs registered in bulk (3 SYSTEM values each: owner, regtime, jobId)
plus 7 user tags per job (one request per job) -- 10 values per job. The index keeps regtime and
the 7 tags (owner and jobid travel with every record). Targets (issue 12): the index has every
value < 30 s after the last commit; query p95 < 50 ms for five selective queries (the targets are
stated for 1M indexed jobs; the report says what size was reached).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from results import Figure, record
from serverctl import bench_home, cleanup_on_sigterm, free_port, stop_server, throwaway_postgres

from jp_primary.auth.identity import Role
from jp_primary.auth.tokens import ServiceTokens, load_or_create_key

PG = os.environ.get(
    "JP_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
OWNERS = [f"/C=XX/O=Bench/CN=user{i}" for i in range(10)]
TAGS = 7
WORDS = [f"w{i}" for i in range(50)]
CONCURRENCY = 16


def _start(command: list[str], env: dict[str, str], log: Path, url: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[3]} exited: {log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return process
        time.sleep(0.1)
    raise RuntimeError(f"{command[3]} did not start: {log.read_text()[-3000:]}")


def _index_config(home: Path, port: int, primary: str, token_file: Path, db: str | None) -> str:
    database = f'database_url = "{db}"' if db else ""
    attributes = "\n".join(
        f'[[attributes]]\nname = "tag:t{k}"\nindexed = {"true" if k < 2 else "false"}\n'
        for k in range(TAGS)
    )
    return f"""
[server]
port = {port}
public_url = "http://127.0.0.1:{port}"
home = "{home}"
{database}

[[attributes]]
name = "jp:regtime"
indexed = true

{attributes}

[[feeds]]
name = "bench"
url = "{primary}"
token_file = "{token_file}"
mode = "push"
"""


def _tags(i: int, rng: random.Random) -> list[dict[str, str]]:
    values = [f"g{i % 1000:04d}", f"u{i:07d}", rng.choice(WORDS)]
    values += [str(rng.randint(0, 10**6)) for _ in range(TAGS - 3)]
    return [{"name": f"t{k}", "value": v} for k, v in enumerate(values)]


async def _load(primary: str, token: str, jobs: int) -> tuple[list[str], float]:
    """Register ``jobs`` in bulk, then tag each; the time of the last commit (monotonic)."""
    rng = random.Random(12)
    headers = {"Authorization": f"Bearer {token}"}
    jobids = [f"https://lb.example.org:9000/bench{i:017d}" for i in range(jobs)]
    # Idle connections are closed by the client before uvicorn's 5 s keep-alive ends them: a
    # request sent on a connection the server is closing fails with no way to know its fate.
    limits = httpx.Limits(keepalive_expiry=1.0)
    async with httpx.AsyncClient(
        base_url=primary, headers=headers, timeout=120, limits=limits
    ) as client:
        for start in range(0, jobs, 1000):
            part = jobids[start : start + 1000]
            body = {"jobs": [{"jobid": j, "owner": OWNERS[hash(j) % 10]} for j in part]}
            response = await client.post("/v1/jobs/bulk", json=body)
            response.raise_for_status()
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(jobs):
            queue.put_nowait(i)
        tags = {i: _tags(i, rng) for i in range(jobs)}

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                key = jobids[i].rpartition("/")[2]
                response = await client.post(f"/v1/jobs/{key}/tags", json={"tags": tags[i]})
                response.raise_for_status()
                if i % 10000 == 0:
                    print(f"  tagged job {i}", file=sys.stderr, flush=True)

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return jobids, time.monotonic()


def _counts(index: str, auth: dict[str, str]) -> tuple[int, int]:
    body = httpx.get(f"{index}/v1/feeds", headers=auth, timeout=60).json()
    return body["jobs"], body["values"]


def _queries(jobids: list[str]) -> list[tuple[str, str | None, dict[str, Any]]]:
    sample = random.Random(5).sample(jobids, 5)
    return [
        (
            "tag:t0 eq (1 in 1,000)",
            None,
            {"where": [{"attr": "tag:t0", "op": "eq", "value": "g0042"}]},
        ),
        (
            "tag:t1 eq (one job)",
            None,
            {"where": [{"attr": "tag:t1", "op": "eq", "value": "u0000777"}]},
        ),
        (
            "tag:t1 within (50 jobs)",
            None,
            {
                "where": [
                    {"attr": "tag:t1", "op": "within", "value": "u0000100", "value2": "u0000149"}
                ]
            },
        ),
        (
            "jobid in (5 jobs)",
            None,
            {"where": [{"attr": "jp:jobId", "op": "in", "values": sample}]},
        ),
        (
            "owner's tag:t0 eq and tag:t2 eq",
            OWNERS[3],
            {
                "where": [
                    {"attr": "tag:t0", "op": "eq", "value": "g0007"},
                    {"attr": "tag:t2", "op": "ne", "value": "w0"},
                ],
                "select": ["tag:t2"],
            },
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--index-database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--repeat", type=int, default=40, help="runs of each query")
    parser.add_argument("--quick", action="store_true", help="5,000 jobs")
    args = parser.parse_args()
    jobs = 5000 if args.quick else args.jobs
    cleanup_on_sigterm()
    with contextlib.ExitStack() as stack:
        primary_db = stack.enter_context(throwaway_postgres(PG))
        index_db = (
            stack.enter_context(throwaway_postgres(PG))
            if args.index_database == "postgres"
            else None
        )
        home = stack.enter_context(bench_home(primary_db))
        tokens = ServiceTokens(load_or_create_key(home.path / "token.key"))
        trusted = tokens.issue("/C=XX/O=Bench/CN=lb", [Role.TRUSTED], 86400)
        token_file = home.path / "indexer.token"
        token_file.write_text(tokens.issue("/C=XX/O=Bench/CN=index", [Role.INDEXER], 86400))
        primary_port, index_port = free_port(), free_port()
        primary = f"http://127.0.0.1:{primary_port}"
        index = f"http://127.0.0.1:{index_port}"
        serve = [sys.executable, "-m", "jp_primary.cli", "serve", "--port", str(primary_port)]
        p = _start(serve, home.env, home.path / "primary.log", primary)
        stack.callback(stop_server, p)
        index_home = home.path / "index"
        index_home.mkdir()
        config = index_home / "index.toml"
        config.write_text(_index_config(index_home, index_port, primary, token_file, index_db))
        command = [sys.executable, "-m", "jp_primary.cli", "index-server", "--config", str(config)]
        env = {k: v for k, v in home.env.items() if k != "JP_DATABASE_URL"}
        i = _start(command, env, index_home / "index.log", index)
        stack.callback(stop_server, i)
        index_tokens = ServiceTokens(load_or_create_key(index_home / "token.key"))
        admin = {"Authorization": f"Bearer {index_tokens.issue('/CN=op', [Role.ADMIN], 86400)}"}
        while not httpx.get(f"{index}/v1/feeds", headers=admin).json()["feeds"][0]["history_done"]:
            time.sleep(0.2)
        print(f"loading {jobs} jobs x 10 values into the primary ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        jobids, last_commit = asyncio.run(_load(primary, trusted, jobs))
        load_s = last_commit - started
        expected = (jobs, jobs * (1 + TAGS))
        at_last = _counts(index, admin)
        while (found := _counts(index, admin)) != expected:
            if time.monotonic() - last_commit > 1800:
                raise RuntimeError(f"the index has {found}, expected {expected}")
            time.sleep(0.2)
        caught_up = time.monotonic() - last_commit
        print(
            f"load {load_s:.1f} s ({jobs * 10 / load_s:.0f} values/s on the primary); index at the "
            f"last commit {at_last[1]} of {expected[1]} values; all {expected[1]} values "
            f"{caught_up:.2f} s after the last commit"
        )
        latencies: list[float] = []
        for name, owner, body in _queries(jobids):
            auth = (
                {"Authorization": f"Bearer {index_tokens.issue(owner, [], 86400)}"}
                if owner
                else admin
            )
            times = []
            with httpx.Client(base_url=index, headers=auth, timeout=60) as client:
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    response = client.post("/v1/query", json={**body, "limit": 100})
                    times.append(time.perf_counter() - t0)
                    response.raise_for_status()
            found_jobs = len(response.json()["jobs"])
            p95 = statistics.quantiles(times, n=20)[-1] * 1000
            latencies += times
            p50 = statistics.median(times) * 1000
            print(f"  {name}: {found_jobs} jobs, p50 {p50:.1f} ms, p95 {p95:.1f} ms")
        overall = statistics.quantiles(latencies, n=20)[-1] * 1000
        print(f"query p95 over the five queries: {overall:.1f} ms at {jobs} indexed jobs")
        record(
            Figure(
                "index",
                f"index complete after the last commit, {jobs} jobs x 10 values",
                caught_up,
                "s",
                target="< 30 s",
                met=caught_up < 30,
            ),
            Figure(
                "index",
                f"index query p95, five selective queries, {jobs} jobs",
                overall,
                "ms",
                target="< 50 ms (at 1M jobs)",
                met=overall < 50,
            ),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
