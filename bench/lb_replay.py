"""Benchmark: L&B dump parse + sort + replay + attribute derivation vs a read-and-split baseline.

A generated workload (default 1,000,000 events over 20,000 jobs) is held in memory as per-job
byte buffers, so both passes read the same bytes and no disk is measured. The baseline only
splits each job's buffer into lines and each line into words; the full pass does what the L&B
plugin does for every job. One process, pure Python. Times are the process's CPU time
(``time.process_time``), so other load on a shared machine distorts them less than wall time.

    .venv/bin/python bench/lb_replay.py                 # full size
    .venv/bin/python bench/lb_replay.py --events 50000 --jobs 1000   # quick run
"""

from __future__ import annotations

import argparse
import random
import time

from results import Figure, record

from jp_primary.plugins.classads import classad_values
from jp_primary.plugins.lb.derive import derive_attributes
from jp_primary.plugins.lb.dump import parse_dump, select_job
from jp_primary.plugins.lb.statemachine import replay
from jp_primary.testing.lbdumps import generate_workload

TARGET = 60_000  # events per second for the full pass (RESULTS.md)


def baseline(buffers: list[bytes]) -> int:
    words = 0
    for buffer in buffers:
        for line in buffer.decode("utf-8").splitlines():
            words += len(line.split(" "))
    return words


def full_pass(buffers: list[bytes]) -> int:
    values = 0
    for buffer in buffers:
        parsed = parse_dump(buffer.splitlines())
        events, _ = select_job(parsed.events, None)
        derived, _ = derive_attributes(replay(events), classad_values)
        values += len(derived)
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=20260101)
    args = parser.parse_args()

    started = time.perf_counter()
    dumps = generate_workload(random.Random(args.seed), args.events, args.jobs)
    buffers = [("\n".join(lines) + "\n").encode() for lines in dumps]
    events = sum(len(lines) for lines in dumps)
    megabytes = sum(len(b) for b in buffers) / 1e6
    print(f"workload: {events} events, {len(dumps)} jobs, {megabytes:.1f} MB"
          f" (generated in {time.perf_counter() - started:.1f} s)")  # fmt: skip

    started = time.process_time()
    baseline(buffers)
    base_seconds = time.process_time() - started
    started = time.process_time()
    values = full_pass(buffers)
    full_seconds = time.process_time() - started

    print(f"baseline (read + split): {base_seconds:.2f} s, {events / base_seconds:,.0f} events/s")
    print(
        f"parse + sort + replay + attributes: {full_seconds:.2f} s,"
        f" {events / full_seconds:,.0f} events/s ({values} attribute values)"
    )
    print(f"ratio full/baseline: {full_seconds / base_seconds:.1f}x")
    rate = events / full_seconds
    record(
        Figure("lb_replay", f"parse + replay + attributes, {events} events / {len(dumps)} jobs",
               round(rate), "events/s", round(events / base_seconds),
               round(rate / (events / base_seconds), 4), f">= {TARGET:,} events/s",
               rate >= TARGET)
    )  # fmt: skip


if __name__ == "__main__":
    main()
