"""Benchmark: an HTCondor user log read + mapped to L&B events + replayed, vs reading it alone.

A generated log (default 1,000,000 events, jobs of 10 events: submit, execute, eviction,
execute again, image size updates, termination; ``jp_primary.testing.condorlogs``) is written
to a temporary file. The baseline iterates it with ``htcondor2.JobEventLog`` and reads each
event's type; the full pass does what the ``condor-log`` plugin does for every job: read the
events (``condor.reader``), summarise them, map them to L&B events and replay each job through
the L&B state machine (``condor.jobs.LogJobs``, every job, no job limit). Times are CPU times
(``time.process_time``), the better of ``--repeat`` runs each. Then the plugin's ``extract`` runs
on a log of ``--big-mib`` MiB (default 500) and its memory growth (peak RSS) is recorded: it
must stay flat, whatever the size.

    .venv/bin/python bench/condor.py                                  # full size
    .venv/bin/python bench/condor.py --events 100000 --big-mib 50     # quick run
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import htcondor2
from procmem import MIB
from results import Figure, record

from jp_primary.plugins.base import ExtractContext
from jp_primary.plugins.condor.jobs import LogJobs
from jp_primary.plugins.condor.plugin import CondorLogPlugin
from jp_primary.plugins.condor.reader import ReadOutcome, read_log
from jp_primary.testing.condorlogs import write_long_job, write_workload

TARGET_RATIO = 0.5  # full-pass events/s over baseline events/s
TARGET_GROWTH_MIB = 128  # peak RSS growth of extract() on the big log
_BYTES_PER_EVENT = 200  # about, in the generated log


def baseline(path: Path) -> int:
    events = 0
    log = htcondor2.JobEventLog(str(path))
    for event in log.events(stop_after=0):
        event.type  # noqa: B018  (what any reader looks at)
        events += 1
    log.close()
    return events


def full_pass(path: Path) -> int:
    """Every job read, mapped and replayed; the replays are counted, not kept (the plugin keeps
    those of the jobs it details, at most ``jobs.MAX_JOBS``)."""
    replays: list[int] = []
    jobs = LogJobs(None, max_jobs=10**9, on_replay=lambda job, result: replays.append(1))
    outcome = ReadOutcome()
    jobs.add_all(read_log(path, outcome))
    replayed = jobs.finish()
    assert outcome.error is None
    assert len(replays) == len(replayed)
    return outcome.read


def best(function: object, path: Path, repeat: int) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(repeat):
        started = time.process_time()
        count = function(path)  # type: ignore[operator]
        times.append(time.process_time() - started)
    return min(times), count


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def extract_growth(work: Path, shape: str, mib: int, per_job: int) -> tuple[str, float, float]:
    """``extract()`` of a ``mib`` MiB log of many short jobs or of one long job: its peak RSS
    growth, measured in a fresh process (``--extract-only``) so that nothing earlier (writing
    the log, the passes above) sets the peak."""
    big = work / "big.log"
    events = mib * MIB // _BYTES_PER_EVENT
    with big.open("w") as stream:
        if shape == "one job":
            size = write_long_job(stream, events)
        else:
            size = write_workload(stream, events, per_job)
    command = [sys.executable, __file__, "--extract-only", str(big)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    big.unlink()
    lines = out.strip().splitlines()
    seconds, values, problems, growth = json.loads(lines[-1])
    print(
        f"extract() of a {size / MIB:.0f} MiB log ({shape}): {seconds:.1f} s, {values} values,"
        f" {len(problems)} problems, peak RSS growth {growth:.0f} MiB"
    )
    for problem in problems[:4]:
        print(f"  problem: {problem[:200]}")
    return shape, size / MIB, growth


def extract_only(path: Path) -> None:
    context = ExtractContext(
        "https://lb.example.org:9000/bench", "bench", "condor-log", "", datetime.now(UTC)
    )
    plugin = CondorLogPlugin()
    before = rss_kib()
    started = time.process_time()
    extraction = plugin.extract(path, context)
    seconds = time.process_time() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    growth = max(0, peak - before) / 1024
    problems = [problem.message for problem in extraction.errors]
    print(json.dumps([seconds, len(extraction.values), problems, growth]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--per-job", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--big-mib", type=int, default=500)
    parser.add_argument("--extract-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.extract_only:
        extract_only(args.extract_only)
        return

    with tempfile.TemporaryDirectory(prefix="jp-bench-condor-") as work:
        path = Path(work) / "user.log"
        started = time.perf_counter()
        with path.open("w") as stream:
            size = write_workload(stream, args.events, args.per_job)
        print(f"log: {args.events} events, {size / 1e6:.0f} MB"
              f" (written in {time.perf_counter() - started:.1f} s)")  # fmt: skip
        base_seconds, events = best(baseline, path, args.repeat)
        full_seconds, mapped = best(full_pass, path, args.repeat)
        assert events == mapped == args.events, (events, mapped)
        base_rate, full_rate = events / base_seconds, events / full_seconds
        ratio = full_rate / base_rate
        print(f"htcondor2.JobEventLog alone: {base_seconds:.2f} s, {base_rate:,.0f} events/s")
        print(f"read + map + replay: {full_seconds:.2f} s, {full_rate:,.0f} events/s")
        print(f"ratio: {ratio:.2f} (target >= {TARGET_RATIO})")
        path.unlink()

        growths = [
            extract_growth(Path(work), shape, args.big_mib, args.per_job)
            for shape in ("many jobs", "one job")
        ]
    record(
        Figure("condor", f"read + map + replay, {events} events", round(full_rate), "events/s",
               round(base_rate), round(ratio, 3), f">= {TARGET_RATIO}", ratio >= TARGET_RATIO),
        *(
            Figure("condor", f"extract() of a {size_mib:.0f} MiB log ({shape}): peak RSS growth",
                   round(growth), "MiB", None, None, f"< {TARGET_GROWTH_MIB} MiB",
                   growth < TARGET_GROWTH_MIB)
            for shape, size_mib, growth in growths
        ),
    )  # fmt: skip


if __name__ == "__main__":
    main()
