"""The index server's query latency at size: the five selective queries of ``bench/query.py``
over HTTP against ``jp-primary index-server`` holding N jobs (default 1,000,000).

    .venv/bin/python bench/index_query.py [--jobs 1000000] [--repeat 20] [--keep DIR]
        [--sqlite-cache-mb 64] [--sqlite-mmap-mb 0]

``--keep DIR`` keeps the filled database in DIR and reuses it when DIR already holds one of the
same size (a 1M population takes a quarter of an hour to apply): profile, change, run again.

Population: ``jp_primary.testing.jobsets.synthetic_jobs`` (12 values per job, as the batch-query
benchmark), written through the index's own write path (``index.apply.Applier``, the code that
applies pushed batches and pulled pages) into its SQLite database in batches of 1,000 jobs --
the bench's fast path instead of a primary's feed (``bench/index.py`` measures that path end to
end). Then a real index server on that database answers ``POST /v1/query``: p50/p95 of the first
page (100 jobs) of owner, status+day, tag, doneCode>0 of one owner, jobid prefix. Target
(issue 12): p95 < 50 ms at 1M indexed jobs.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from results import Figure, record
from serverctl import cleanup_on_sigterm, free_port, stop_server

from jp_primary.auth.identity import Role
from jp_primary.auth.tokens import ServiceTokens, load_or_create_key
from jp_primary.index import feedstate, migrate
from jp_primary.index.apply import Applier
from jp_primary.index.catalog import Catalog
from jp_primary.index.config import parse_config
from jp_primary.index.session import create_index_engine
from jp_primary.index.wire import FeedRecord
from jp_primary.testing.jobsets import CAMPAIGNS, LB_SERVER, START, owner_name, synthetic_jobs
from jp_primary.timefmt import rfc3339

SOURCE = "http://primary.example.org:8901"
CONFIG = """
[server]
port = {port}
home = "{home}"
sqlite_cache_mb = {cache_mb}
sqlite_mmap_mb = {mmap_mb}

[query]
unindexed_limit = 0

{attributes}

[[feeds]]
name = "bench"
url = "{source}"
mode = "pull"
"""
KEPT = {
    "jp:regtime": True,
    "lb:status": True,
    "lb:doneCode": True,
    "lb:exitCode": False,
    "lb:destination": False,
    "lb:jobType": False,
    "lb:stateEnterTime": False,
    "lb:cpuTime": False,
    "tag:campaign": True,
    "tag:run": True,
}
KEY_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _config(home: Path, port: int, cache_mb: int = 64, mmap_mb: int = 0) -> str:
    attributes = "\n".join(
        f'[[attributes]]\nname = "{n}"\nindexed = {str(i).lower()}\n' for n, i in KEPT.items()
    )
    return CONFIG.format(
        port=port, home=home, cache_mb=cache_mb, mmap_mb=mmap_mb, attributes=attributes,
        source=SOURCE,
    )  # fmt: skip


def _load(config_text: str, url: str, jobs: int) -> float:
    config = parse_config(config_text)
    migrate.upgrade(url)
    engine = create_index_engine(url)
    applier = Applier(Catalog(config))
    with engine.begin() as conn:
        feedstate.ensure(conn, "bench", SOURCE, "x", "pull")
    started = time.monotonic()
    batch: list[FeedRecord] = []
    seq = 0
    for n, job in enumerate(synthetic_jobs(random.Random(3), jobs)):
        values = []
        for name, value, origin in job.values:
            seq += 1
            values.append(
                {
                    "name": name,
                    "value": value,
                    "origin": origin,
                    "seq": seq,
                    "timestamp": rfc3339(job.registered_at),
                }  # fmt: skip
            )
        batch.append(
            FeedRecord.model_validate({"jobid": job.jobid, "owner": job.owner, "values": values})
        )
        if len(batch) == 1000 or n == jobs - 1:
            with engine.begin() as conn:
                applier.apply(conn, "bench", SOURCE, batch)
            batch = []
            if (n + 1) % 100_000 == 0:
                rate = (n + 1) / (time.monotonic() - started)
                print(f"  {n + 1} jobs applied ({rate:.0f} jobs/s)", file=sys.stderr, flush=True)
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return time.monotonic() - started


def _queries(rng: random.Random) -> dict[str, tuple[str | None, list[dict[str, Any]]]]:
    owner = owner_name(rng.randrange(100))
    day = START + timedelta(days=rng.randrange(100))
    low, high = rfc3339(day), rfc3339(day + timedelta(days=1) - timedelta(microseconds=1))
    prefix = f"{LB_SERVER}/{''.join(rng.choices(KEY_CHARS, k=2))}"
    return {
        "owner": (None, [{"attr": "system:owner", "op": "eq", "value": owner}]),
        "status+day": (
            None,
            [
                {"attr": "lb:status", "op": "eq", "value": "Done"},
                {"attr": "system:regtime", "op": "within", "value": low, "value2": high},
            ],
        ),
        "tag": (None, [{"attr": "tag:run", "op": "eq", "value": str(rng.randrange(1000))}]),
        "campaign tag": (
            None,
            [{"attr": "tag:campaign", "op": "eq", "value": rng.choice(CAMPAIGNS)}],
        ),
        "doneCode>0, one owner": (owner, [{"attr": "lb:doneCode", "op": "gt", "value": "0"}]),
        "jobid prefix": (None, [{"attr": "system:jobId", "op": "prefix", "value": prefix}]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the database in this directory")
    parser.add_argument("--sqlite-cache-mb", type=int, default=64, help="server.sqlite_cache_mb")
    parser.add_argument("--sqlite-mmap-mb", type=int, default=0, help="server.sqlite_mmap_mb")
    args = parser.parse_args()
    cleanup_on_sigterm()
    with contextlib.ExitStack() as stack:
        if args.keep is None:
            home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="jp-bench-index-")))
        else:
            home = args.keep
            home.mkdir(parents=True, exist_ok=True)
        port = free_port()
        text = _config(home, port, args.sqlite_cache_mb, args.sqlite_mmap_mb)
        (home / "index.toml").write_text(text)
        url = f"sqlite:///{home / 'index.sqlite'}"
        filled = home / "filled"  # written once the load is complete: the job count
        if filled.exists() and filled.read_text() == str(args.jobs):
            migrate.upgrade(url)  # a kept database gets the schema changes made since
            print(f"reusing the {args.jobs}-job database in {home}")
        else:
            (home / "index.sqlite").unlink(missing_ok=True)
            load_s = _load(text, url, args.jobs)
            filled.write_text(str(args.jobs))
            print(f"{args.jobs} jobs x 12 values applied in {load_s:.0f} s")
        command = [
            sys.executable,
            "-m",
            "jp_primary.cli",
            "index-server",
            "--config",
            str(home / "index.toml"),
        ]
        with (home / "index.log").open("wb") as log:
            server = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                time.sleep(0.2)
            tokens = ServiceTokens(load_or_create_key(home / "token.key"))
            rng = random.Random(7)
            times: dict[str, list[float]] = {}
            with httpx.Client(base_url=base, timeout=120) as client:
                for _ in range(args.repeat):
                    for name, (owner, where) in _queries(rng).items():
                        subject, roles = (owner, []) if owner else ("/CN=bench admin", [Role.ADMIN])
                        headers = {"Authorization": f"Bearer {tokens.issue(subject, roles, 3600)}"}
                        began = time.perf_counter()
                        response = client.post(
                            "/v1/query", json={"where": where, "limit": 100}, headers=headers
                        )
                        times.setdefault(name, []).append(time.perf_counter() - began)
                        response.raise_for_status()
            every: list[float] = []
            for name, measured in times.items():
                every += measured
                p50 = statistics.median(measured) * 1000
                p95 = statistics.quantiles(measured, n=20)[-1] * 1000
                print(f"  {name}: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
            overall = statistics.quantiles(every, n=20)[-1] * 1000
            print(f"query p95 over all: {overall:.1f} ms at {args.jobs} indexed jobs")
            record(
                Figure(
                    "index_query",
                    f"index query p95, selective queries, {args.jobs} jobs",
                    overall,
                    "ms",
                    target="< 50 ms",
                    met=overall < 50,
                )  # fmt: skip
            )
        finally:
            stop_server(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
