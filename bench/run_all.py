"""Run every benchmark in bench/ one after the other and print one table of their figures.

    .venv/bin/python bench/run_all.py             # full sizes: 15-30 minutes (machine load)
    .venv/bin/python bench/run_all.py --quick     # small sizes, the whole pipeline in minutes
    .venv/bin/python bench/run_all.py --only load,lb_replay

``make bench`` (``make bench QUICK=1``) installs what is missing (``wrk``, a PostgreSQL server)
and runs this. Each benchmark prints its own report as it goes and appends its figures to a
results file in a temporary directory (``JP_BENCH_RESULTS``, see ``bench/results.py``); at the
end ``bench/report.py`` prints them as one table: figure, value, baseline, ratio, target, met.
A benchmark that stops without recording figures gets a row that says so. PostgreSQL runs use
``JP_BENCH_DATABASE_URL`` (default: the local server as user postgres); each creates and drops
its own database.

The exit status is 1 when a benchmark failed to run or a normal request failed, else 0 (a target
that is not met shows as NO in the table; ``--strict`` makes that exit 1 as well).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import table
from results import RESULTS_ENV, Figure, load, record

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def benchmarks(database: str) -> dict[str, tuple[list[str], list[str]]]:
    """name -> (full arguments, quick arguments)."""
    pg = f"--database-url {database}"
    plan = {
        "lb_replay": ("", "--events 50000 --jobs 1000"),
        "registrations": (
            f"{pg} --duration 8 --repeat 2",
            f"{pg} --duration 3 --warmup 1 --workers 1",
        ),
        "upload": ("", "--size-mib 64 --repeat 1"),
        "storage": ("", "--size-mib 32 --repeat 1"),
        "load": (pg, f"{pg} --duration 10 --baseline-duration 5 --control-duration 4 --jobs 50"),
        "feed": (pg, f"{pg} --jobs 5000 --duration 10"),
        "query": (pg, f"{pg} --sizes 20000 --repeat 10"),
        "importer": (pg, f"{pg} --dumps 1000 --runs 50 --baseline-dumps 300"),
        "index": ("", "--quick"),
    }
    return {name: (shlex.split(full), shlex.split(quick)) for name, (full, quick) in plan.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and short runs")
    parser.add_argument("--only", help="comma-separated benchmark names")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is not met")
    args = parser.parse_args()
    database = os.environ.get("JP_BENCH_DATABASE_URL", DEFAULT_DATABASE)
    plan = benchmarks(database)
    names = list(plan) if not args.only else args.only.split(",")
    unknown = [n for n in names if n not in plan]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(plan)}")
    with tempfile.TemporaryDirectory(prefix="jp-bench-results-") as work:
        results = Path(work) / "results.jsonl"
        os.environ[RESULTS_ENV] = str(results)  # for the benchmarks and for record() here
        failed: list[str] = []
        took: dict[str, float] = {}
        for name in names:
            full, quick = plan[name]
            script = str(BENCH_DIR / f"{name}.py")
            command = [sys.executable, script, *(quick if args.quick else full)]
            print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
            before = len(load(results))
            started = time.monotonic()
            status = subprocess.run(command, check=False).returncode
            took[name] = time.monotonic() - started
            recorded = len(load(results)) - before
            if status != 0 and recorded == 0:
                failed.append(name)
                what = f"did not finish (exit status {status}): see its output above"
                record(Figure(name, what, None, "", target="runs", met=False))
            elif status != 0:
                print(f"=== {name} exited with status {status} (a target or a check failed)")
        figures = load(results)
    mode = "quick" if args.quick else "full"
    print(f"\n=== all benchmarks ({mode}; load average now {os.getloadavg()[0]:.1f}; seconds: "
          + ", ".join(f"{n} {s:.0f}" for n, s in took.items()) + ")\n")  # fmt: skip
    print(table(figures))
    if failed:
        print(f"\nfailed to run: {', '.join(failed)}")
    load_errors = any(f.bench == "load" and f.unit == "errors" and f.met is False for f in figures)
    unmet = any(f.met is False for f in figures)
    return 1 if failed or load_errors or (args.strict and unmet) else 0


if __name__ == "__main__":
    sys.exit(main())
