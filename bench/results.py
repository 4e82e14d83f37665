"""Machine-readable benchmark results, collected by ``bench/report.py`` into one table.

A benchmark calls :func:`record` with its figures. When the environment variable
``JP_BENCH_RESULTS`` names a file (``make bench`` / ``bench/run_all.py`` set it), each figure is
appended to it as one JSON line; otherwise nothing is written, so every script still runs alone.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS_ENV = "JP_BENCH_RESULTS"


@dataclass(frozen=True)
class Figure:
    bench: str  # the script, e.g. "registrations"
    figure: str  # what was measured, e.g. "POST /v1/jobs, SQLite, 1 worker"
    value: float | None
    unit: str  # e.g. "req/s", "s", "MiB", "errors"
    baseline: float | None = None  # the same run's baseline, in the same unit
    ratio: float | None = None  # the ratio the target is about (None: no ratio)
    target: str = ""  # e.g. ">= 0.4", "= 0", "< 64 MiB"; "" when only recorded
    met: bool | None = None  # None when there is no target


def record(*figures: Figure) -> None:
    """Append the figures to the results file named by JP_BENCH_RESULTS, if any."""
    path = os.environ.get(RESULTS_ENV)
    if not path:
        return
    with Path(path).open("a", encoding="utf-8") as out:
        for figure in figures:
            out.write(json.dumps(asdict(figure)) + "\n")


def load(path: Path) -> list[Figure]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [Figure(**json.loads(line)) for line in lines if line.strip()]
