"""Benchmark: the maildir importer and ``upload_files``.

1. **Import rate.** N generated L&B dumps of about 10 kB each (``jp_primary.testing.lbdumps``,
   scenario ``done``, a fresh jobid each, the jobs not registered beforehand, so each dump is a
   registration plus a one-shot upload with attribute extraction, the unknown job registered on
   the way; the importer sends the dumps waiting together in bulk requests of ``--bulk``, 1 for
   one PUT per dump) are queued in a maildir and
   ``jp-primary import --once`` delivers them to ``jp-primary``'s app (uvicorn, ``--server-workers``
   processes) on a throwaway PostgreSQL database. Figure: dumps per second, from the start of
   the importer process to its exit (target >= 200/s; the original's design was 1 M jobs/day,
   about 12/s). Baseline of the same run: ``--baseline-dumps`` fresh jobs registered and
   uploaded straight from as many client threads, dumps held in memory; the ratio says what the
   maildir and the importer cost on top of the service.
2. **upload_files latency.** ``upload_files`` of 10 files of 1 MB into a spool on the local
   disk, ``--runs`` times. Figure: p99 of the call (target < 5 ms). Recorded beside it: the
   p99 of one ``fsync`` of a small file plus one of its directory on the same disk, the floor a
   durable spool write cannot go below.

    .venv/bin/python bench/importer.py --database-url postgresql+psycopg://postgres@127.0.0.1/postgres
    .venv/bin/python bench/importer.py --database-url ... --dumps 1000 --runs 50    # quick
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import Figure, record
from serverctl import (
    PROD_FACTORY,
    bench_home,
    cleanup_on_sigterm,
    throwaway_postgres,
    uvicorn_server,
)

from jp_primary.client import upload_files
from jp_primary.client.maildir import Maildir, fsync_dir
from jp_primary.client.messages import FileMessage, format_file_message
from jp_primary.testing.lbdumps import generate_job

LB = "/C=XX/O=Bench/CN=host/lb.bench.example"
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def queue_dumps(folder: Path, count: int) -> tuple[Maildir, int]:
    rng = random.Random(12)  # noqa: S311 - reproducible test data
    box = Maildir(folder / "maildir")
    dumps = folder / "dumps"
    dumps.mkdir()
    total = 0
    templates = [generate_job(random.Random(i), "done") for i in range(20)]  # noqa: S311
    for i in range(count):
        jobid = "https://lb.bench.example:9000/" + "".join(rng.choice(ALPHABET) for _ in range(22))
        lines = templates[i % len(templates)]
        old = re.search(r'DG\.JOBID="([^"]*)"', lines[0])
        assert old is not None
        body = "\n".join(lines).replace(old[1], jobid) + "\n"
        path = dumps / f"{i}.dump"
        path.write_text(body)
        total += len(body)
        box.deliver(format_file_message(FileMessage(jobid=jobid, file=str(path))), sync=False)
    os.sync()
    return box, total


def _cpu(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) from /proc; 0 once gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_pids(root: int) -> list[int]:
    """uvicorn's supervisor and its worker processes."""
    pids = [root]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if int(stat.read_text().rpartition(")")[2].split()[1]) == root:
                pids.append(int(stat.parent.name))
    return pids


def _backends(database_url: str) -> list[int]:
    """The PostgreSQL backends connected to the benchmark's database."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(
        database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    )
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sqlalchemy.text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                )
            )
            return [row[0] for row in rows]
    finally:
        engine.dispose()


def direct_rate(url: str, token: str, bodies: list[tuple[str, bytes]], workers: int) -> float:
    """The baseline: the same calls made straight from ``workers`` threads holding the dumps in
    memory (no maildir, no files, no message bookkeeping): one PUT per dump that registers its
    unknown job on the way (``X-Register-Jobid``), as the importer sends it."""
    from concurrent.futures import ThreadPoolExecutor

    from jp_primary.client import Client, Credentials

    with Client(url, credentials=Credentials(token=token)) as client:

        def one(item: tuple[str, bytes]) -> None:
            jobid, body = item
            stored = client.put_file(jobid, "lb", body, register=True, owner=LB)
            assert stored.registered

        started = time.monotonic()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, bodies))
        return len(bodies) / (time.monotonic() - started)


def import_rate(
    database_url: str, dumps: int, workers: int, server_workers: int, baseline: int, bulk: int
) -> None:
    with bench_home(database_url) as home, tempfile.TemporaryDirectory() as work:
        token = home.cli("token", "--subject", LB, "--role", "trusted")
        token_file = Path(work) / "token"
        token_file.write_text(token)
        box, size = queue_dumps(Path(work), dumps)
        # Read now: the importer removes the dump files it delivered.
        sample = [p.read_text() for p in sorted((Path(work) / "dumps").iterdir())[:20]]
        print(f"{dumps} dumps queued, {size / dumps / 1024:.1f} kB on average", flush=True)
        with uvicorn_server(home, PROD_FACTORY, server_workers) as server:
            command = [sys.executable, "-m", "jp_primary.cli", "import", "--maildir", str(box.root)]
            command += ["--url", server.url, "--token-file", str(token_file), "--once"]
            command += ["--workers", str(workers), "--bulk", str(bulk)]
            server_pids = _server_pids(server.process.pid)
            server_before = sum(_cpu(pid) for pid in server_pids)
            backends_before = {pid: _cpu(pid) for pid in _backends(database_url)}
            kids_before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.monotonic()
            done = subprocess.run(
                command, env=home.env, capture_output=True, text=True, check=False
            )
            seconds = time.monotonic() - started
            kids = resource.getrusage(resource.RUSAGE_CHILDREN)
            importer_cpu = (kids.ru_utime + kids.ru_stime) - (
                kids_before.ru_utime + kids_before.ru_stime
            )
            server_cpu = sum(_cpu(pid) for pid in server_pids) - server_before
            # Backends that started during the run count whole (the pool keeps them open).
            database_cpu = sum(
                _cpu(pid) - backends_before.get(pid, 0.0) for pid in _backends(database_url)
            )
            per_dump = [1000 * cpu / dumps for cpu in (server_cpu, database_cpu, importer_cpu)]
            print(
                "CPU per dump: server {:.1f} ms, PostgreSQL {:.1f} ms, importer {:.1f} ms, "
                "total {:.1f} ms".format(*per_dump, sum(per_dump)),
                flush=True,
            )
            rng = random.Random(99)  # noqa: S311 - test data
            bodies = []
            for i in range(baseline):
                jobid = "https://lb.bench.example:9000/" + "".join(
                    rng.choice(ALPHABET) for _ in range(22)
                )
                old = re.search(r'DG\.JOBID="([^"]*)"', sample[i % len(sample)])
                assert old is not None
                bodies.append((jobid, sample[i % len(sample)].replace(old[1], jobid).encode()))
            direct = direct_rate(server.url, token, bodies, workers) if baseline else None
        tail = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
        print(tail)
        # Why messages were postponed (retried later), if any were: the first few reasons.
        for line in [ln for ln in done.stderr.splitlines() if ": retry " in ln][:5]:
            print(line)
        counts = box.counts()
        delivered = re.search(r"delivered (\d+)", tail)
        ok = done.returncode == 0 and delivered is not None and int(delivered[1]) == dumps
        ok = ok and counts == {"new": 0, "work": 0, "post": 0, "undeliverable": 0}
        rate = dumps / seconds
        print(f"imported {dumps} dumps in {seconds:.1f} s: {rate:.1f} dumps/s; left {counts}")
        if direct:
            print(f"baseline: the same calls straight from {workers} threads: {direct:.1f} dumps/s")
        record(
            Figure(
                "importer",
                f"import of {dumps} ~10 kB dumps (register + upload), PostgreSQL, "
                f"{workers} importer threads, bulk requests of {bulk}, "
                f"{server_workers} server workers",
                round(rate, 1),
                "dumps/s",
                baseline=round(direct, 1) if direct else None,
                ratio=round(rate / direct, 2) if direct else None,
                target=">= 200",
                met=ok and rate >= 200,
            )
        )
        if not ok:
            print(f"import failed or incomplete: exit {done.returncode}\n{done.stderr[-2000:]}")
            raise SystemExit(1)


def upload_files_latency(runs: int) -> None:
    with tempfile.TemporaryDirectory(dir=os.environ.get("JP_BENCH_SPOOL_DIR")) as work:
        folder = Path(work)
        files = []
        for i in range(10):
            path = folder / f"sandbox-{i}.bin"
            path.write_bytes(os.urandom(1_000_000))
            files.append(path)
        jobid = "https://lb.bench.example:9000/" + "A" * 22
        calls = []
        for _ in range(runs):
            started = time.perf_counter()
            upload_files(jobid, files, spool=folder / "spool")
            calls.append(time.perf_counter() - started)
        floor = []
        probe = folder / "probe"
        for _ in range(runs):
            started = time.perf_counter()
            with probe.open("wb") as fh:
                fh.write(b"x" * 200)
                fh.flush()
                os.fsync(fh.fileno())
            fsync_dir(folder)
            floor.append(time.perf_counter() - started)
    p50, p99 = percentile(calls, 0.5) * 1e3, percentile(calls, 0.99) * 1e3
    f99 = percentile(floor, 0.99) * 1e3
    print(
        f"upload_files of 10 x 1 MB, {runs} calls: p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
        f"mean {statistics.mean(calls) * 1e3:.2f} ms; fsync file+dir p99 {f99:.2f} ms"
    )
    record(
        Figure(
            "importer",
            "upload_files, 10 files of 1 MB (durable spool), p99",
            round(p99, 2),
            "ms",
            baseline=round(f99, 2),
            target="< 5",
            met=p99 < 5,
        ),
        Figure(
            "importer", "one fsync of a file + its directory (the floor), p99", round(f99, 2), "ms"
        ),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", required=True, help="PostgreSQL server (a database is made)"
    )
    parser.add_argument("--dumps", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=32, help="importer threads")
    parser.add_argument("--server-workers", type=int, default=2)
    parser.add_argument(
        "--bulk", type=int, default=32, help="dumps per bulk request of the importer (1: none)"
    )
    parser.add_argument("--runs", type=int, default=200, help="upload_files calls")
    parser.add_argument(
        "--baseline-dumps", type=int, default=1000, help="dumps sent straight (the baseline)"
    )
    args = parser.parse_args()
    cleanup_on_sigterm()
    upload_files_latency(args.runs)
    with throwaway_postgres(args.database_url) as url:
        import_rate(
            url, args.dumps, args.workers, args.server_workers, args.baseline_dumps, args.bulk
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
