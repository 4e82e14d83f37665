"""Benchmark: batch queries (POST /v1/query's service) at 100,000 and 1,000,000 jobs on PostgreSQL.

Population: ``jp_primary.testing.jobsets.synthetic_jobs`` (12 attribute values per job: the
three SYSTEM values, eight L&B-derived ones, two user tags; 100 owners; registrations spread
over 100 days). Written straight into the tables with PostgreSQL ``COPY`` — the bench's fast
path, not the service's write path — with the repository layer's pieces: owners through
``identities.identity_id``, seqs through ``values.allocate_seq``, and each value's index key from
the same type registry ``values.append_for_jobs`` keys with (the plugins' declarations). The
secondary indexes of ``attribute_values`` are dropped for the load and rebuilt from their own
definitions afterwards (the same end state, built faster), then ``ANALYZE``.

Measured at each size, in-process through ``QueryService.query`` (condition compilation, the
SQL, the page; no HTTP): p50/p95 of the first page (100 jobs) of five selective queries, each
repeated with varying parameters —

* owner: ``system:owner = <one of 100 owners>`` (as an admin);
* status+day: ``lb:status = Done`` and ``system:regtime within`` one day;
* tag: ``tag:run = <n>`` (0.1 % of the jobs; ``tag:campaign`` is 1/12 and reported too);
* doneCode: ``lb:doneCode > 0`` as one owner (owner isolation: their own jobs only);
* jobid prefix: ``system:jobId prefix <server>/<two characters>`` (1/4,096 of the jobs: 24 at
  100,000, so not a full page there) and ``<server>/<one character>`` (1/64: a full page at both
  sizes, the like-for-like figure for flatness);

and the rate of a full keyset scan (admin, no condition, pages of 10,000, following ``next``).

    .venv/bin/python bench/query.py --database-url postgresql+psycopg://postgres@127.0.0.1/postgres
    .venv/bin/python bench/query.py --sizes 20000 --repeat 20          # quick run
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from results import Figure, record
from serverctl import throwaway_postgres
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from jp_primary.attributes.conditions import Condition, compile_conditions
from jp_primary.attributes.registry import TypeRegistry
from jp_primary.auth.identity import Identity, Role
from jp_primary.db import migrate
from jp_primary.db.repositories import identities, values
from jp_primary.db.repositories import query as query_sql
from jp_primary.db.session import Database, create_db_engine, new_session
from jp_primary.plugins.registry import PluginRegistry
from jp_primary.services.query import Query, QueryService
from jp_primary.testing.jobsets import (
    CAMPAIGNS,
    LB_SERVER,
    START,
    SyntheticJob,
    owner_name,
    synthetic_jobs,
)
from jp_primary.timefmt import rfc3339

DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
OWNERS = 100
DAYS = 100
BATCH = 20_000
P95_TARGET_MS = 50.0
FLAT_TARGET = 1.5
SCAN_TARGET = 50_000.0
ADMIN = Identity("/CN=bench admin", frozenset({Role.ADMIN}))
KEY_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
VALUE_COLUMNS = (
    "seq, job_id, name, value, origin, origin_detail, timestamp, recorded_at, file_id, "
    "author_id, index_key"
)


def populate(engine: Engine, types: TypeRegistry, start: int, stop: int) -> float:
    """Jobs ``start`` .. ``stop - 1`` of the synthetic population; returns the seconds taken."""
    began = time.monotonic()
    rng = random.Random(f"jobs-{start}")
    jobs = synthetic_jobs(rng, stop - start, owners=OWNERS, days=DAYS)
    with _without_value_indexes(engine, stop - start):
        while batch := [job for _, job in zip(range(BATCH), jobs, strict=False)]:
            _copy_batch(engine, types, batch)
            print(f"  {start + len(batch):,} jobs loaded", end="\r", flush=True)
            start += len(batch)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # What autovacuum does to a loaded table in time: statistics and the visibility map
        # (index-only scans).
        conn.execute(text("VACUUM ANALYZE jobs"))
        conn.execute(text("VACUUM ANALYZE attribute_values"))
        conn.execute(text("VACUUM ANALYZE identities"))
    print()
    return time.monotonic() - began


@contextmanager
def _without_value_indexes(engine: Engine, adding: int) -> Iterator[None]:
    """Drop the secondary indexes of attribute_values for a big load; rebuild them after."""
    if adding < 200_000:
        yield
        return
    with engine.begin() as conn:
        definitions = conn.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'attribute_values' "
                "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
            )
        ).all()
        for name, _ in definitions:
            conn.execute(text(f'DROP INDEX "{name}"'))
    yield
    began = time.monotonic()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("SET maintenance_work_mem = '256MB'"))
        for _, definition in definitions:
            conn.execute(text(definition))
    print(f"  indexes rebuilt in {time.monotonic() - began:.0f} s")


def _copy_batch(engine: Engine, types: TypeRegistry, batch: list[SyntheticJob]) -> None:
    with new_session(engine, types) as session:
        owner_ids = {job.owner: identities.identity_id(session, job.owner) for job in batch}
        first_job = int(session.execute(text("SELECT nextval('jobs_id_seq')")).scalar_one())
        session.execute(
            text("SELECT setval('jobs_id_seq', :last)"), {"last": first_job + len(batch) - 1}
        )
        count = sum(len(job.values) for job in batch)
        seq = values.allocate_seq(session, count)
        cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
        jobs_copy = (
            "COPY jobs (id, key, jobid, owner_id, registered_by_id, registered_at, "
            "registered_trusted) FROM STDIN"
        )
        with cursor.copy(jobs_copy) as copy:
            for offset, job in enumerate(batch):
                owner = owner_ids[job.owner]
                copy.write_row(
                    (first_job + offset, job.key, job.jobid, owner, owner, job.registered_at, False)
                )
        with cursor.copy(f"COPY attribute_values ({VALUE_COLUMNS}) FROM STDIN") as copy:
            for offset, job in enumerate(batch):
                for name, value, origin in job.values:
                    key = types.type_of(name).index_key(value)  # as values.append_for_jobs
                    row = (seq, first_job + offset, name, value, origin, None, job.registered_at,
                           job.registered_at, None, None, key)  # fmt: skip
                    copy.write_row(row)
                    seq += 1
        session.commit()


def selective_queries(rng: random.Random, jobs: int) -> dict[str, tuple[Identity, list[Condition]]]:
    """One draw of each query (parameters vary between draws)."""
    owner = owner_name(rng.randrange(OWNERS))
    day = rfc3339_day(rng.randrange(DAYS))
    prefix = f"{LB_SERVER}/{''.join(rng.choices(KEY_CHARS, k=2))}"
    wide_prefix = f"{LB_SERVER}/{rng.choice(KEY_CHARS)}"
    run = str(rng.randrange(min(1000, jobs)))
    return {
        "owner": (ADMIN, [Condition("system:owner", "eq", owner)]),
        "status+day": (
            ADMIN,
            [
                Condition("lb:status", "eq", "Done"),
                Condition("system:regtime", "within", day[0], day[1]),
            ],
        ),
        "tag": (ADMIN, [Condition("tag:run", "eq", run)]),
        "campaign tag": (ADMIN, [Condition("tag:campaign", "eq", rng.choice(CAMPAIGNS))]),
        "doneCode>0, one owner": (
            Identity(owner, frozenset()),
            [Condition("lb:doneCode", "gt", "0")],
        ),
        "jobid prefix": (ADMIN, [Condition("system:jobId", "prefix", prefix)]),
        "jobid prefix, 1 char": (ADMIN, [Condition("system:jobId", "prefix", wide_prefix)]),
    }


def rfc3339_day(index: int) -> tuple[str, str]:
    day = START + timedelta(days=index)
    return rfc3339(day), rfc3339(day + timedelta(days=1) - timedelta(microseconds=1))


def measure(service: QueryService, jobs: int, repeat: int) -> dict[str, list[float]]:
    rng = random.Random(7)
    times: dict[str, list[float]] = {}

    async def run_all() -> None:
        for _ in range(repeat):
            for name, (who, where) in selective_queries(rng, jobs).items():
                began = time.perf_counter()
                await service.query(who, Query(where, limit=100))
                times.setdefault(name, []).append((time.perf_counter() - began) * 1000)

    asyncio.run(run_all())
    return times


def measure_sql(engine: Engine, types: TypeRegistry, jobs: int, repeat: int) -> dict[str, float]:
    """p50 of the database part alone: ``find_jobs`` in one session on this thread (no thread
    hop, no event loop), to tell the SQL from the service and machine around it."""
    rng = random.Random(7)
    times: dict[str, list[float]] = {}
    with new_session(engine, types) as session:
        for _ in range(repeat):
            for name, (who, where) in selective_queries(rng, jobs).items():
                compiled = compile_conditions(where, types)
                owner = None if who.roles else who.subject
                began = time.perf_counter()
                query_sql.find_jobs(session, compiled, after=0, limit=101, owner=owner)
                times.setdefault(name, []).append((time.perf_counter() - began) * 1000)
            session.rollback()
    return {name: statistics.median(samples) for name, samples in times.items()}


def full_scan(service: QueryService) -> tuple[int, float]:
    async def scan() -> int:
        seen, after = 0, None
        while True:
            page = await service.query(ADMIN, Query([], limit=10_000, after=after))
            seen += len(page.jobs)
            if page.next is None:
                return seen
            after = page.next

    began = time.perf_counter()
    seen = asyncio.run(scan())
    return seen, time.perf_counter() - began


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] if len(samples) > 1 else samples[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    parser.add_argument("--sizes", default="100000,1000000", help="job counts, ascending")
    parser.add_argument("--repeat", type=int, default=50, help="draws of each query per size")
    parser.add_argument(
        "--keep", action="store_true", help="keep the database afterwards (prints its URL)"
    )
    parser.add_argument(
        "--database-name",
        help="a database of this name on the server, kept; created when missing, else reused "
        "with the jobs it holds (a size it already has is measured, not loaded again)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    types = PluginRegistry().attribute_types()
    results: dict[int, dict[str, Any]] = {}
    with _database(args.database_url, args.keep, args.database_name) as url:
        migrate.upgrade(url)
        engine = create_db_engine(url, pool_size=2)
        service = QueryService(Database(engine, types), types, timeout_seconds=60)
        with engine.connect() as conn:
            loaded = int(conn.execute(text("SELECT count(*) FROM jobs")).scalar_one())
        if loaded > sizes[0]:
            parser.error(f"the database holds {loaded:,} jobs, more than --sizes {sizes[0]:,}")
        for size in sizes:
            if size > loaded:
                print(f"populating {loaded:,} -> {size:,} jobs (x12 values, COPY)", flush=True)
                took = populate(engine, types, loaded, size)
                print(f"  {size - loaded:,} jobs in {took:.0f} s ({(size - loaded) / took:,.0f}/s)")
            loaded = size
            measure(service, size, 3)  # warm the caches the measured runs will also have
            times = measure(service, size, args.repeat)
            sql = measure_sql(engine, types, size, args.repeat)
            scanned, seconds = full_scan(service)
            results[size] = {"times": times, "scan": scanned / seconds, "sql": sql}
            report(size, times, sql, scanned, seconds)
        engine.dispose()
    record_figures(results, sizes)
    return 0


@contextmanager
def _database(server: str, keep: bool, name: str | None) -> Iterator[str]:
    if not keep and name is None:
        with throwaway_postgres(server) as url:
            yield url
        return
    name = name or f"jp_bench_query_{secrets.token_hex(3)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if exists.scalar() is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    print(f"database kept: {url}")
    yield url


def report(
    size: int, times: dict[str, list[float]], sql: dict[str, float], scanned: int, seconds: float
) -> None:
    draws = len(next(iter(times.values())))
    print(f"\n{size:,} jobs: first page (100) of each query, {draws} draws (SQL alone: p50)")
    for name, samples in times.items():
        print(
            f"  {name:24} p50 {statistics.median(samples):7.1f} ms   p95 {p95(samples):7.1f} ms"
            f"   SQL p50 {sql[name]:7.1f} ms"
        )
    print(f"  full keyset scan: {scanned:,} jobs in {seconds:.1f} s = {scanned / seconds:,.0f}/s\n")


def record_figures(results: dict[int, dict[str, Any]], sizes: list[int]) -> None:
    largest, smallest = sizes[-1], sizes[0]
    figures = []
    for size in sizes:
        for name, samples in results[size]["times"].items():
            value = p95(samples)
            at_target = size >= 1_000_000
            figures.append(
                Figure(
                    "query",
                    f"p95 first page, {name}, {size:,} jobs",
                    round(value, 2),
                    "ms",
                    target=f"< {P95_TARGET_MS:g} ms" if at_target else "",
                    met=(value < P95_TARGET_MS) if at_target else None,
                )
            )
        for name, value in results[size]["sql"].items():
            figures.append(
                Figure("query", f"p50 SQL alone, {name}, {size:,} jobs", round(value, 2), "ms")
            )
        scan = results[size]["scan"]
        figures.append(
            Figure(
                "query",
                f"full keyset scan, {size:,} jobs",
                round(scan),
                "jobs/s",
                target=f">= {SCAN_TARGET:,.0f}",
                met=scan >= SCAN_TARGET,
            )
        )
    if largest != smallest:
        for name, samples in results[largest]["times"].items():
            ratio = p95(samples) / p95(results[smallest]["times"][name])
            figures.append(
                Figure(
                    "query",
                    f"p95 {largest:,} / {smallest:,} jobs, {name}",
                    round(p95(samples), 2),
                    "ms",
                    baseline=round(p95(results[smallest]["times"][name]), 2),
                    ratio=round(ratio, 2),
                    target=f"< {FLAT_TARGET}",
                    met=ratio < FLAT_TARGET,
                )
            )
    record(*figures)


if __name__ == "__main__":
    sys.exit(main())
