"""Print the figures the benchmarks recorded (``bench/results.py``) as one table.

    .venv/bin/python bench/report.py /tmp/jp-bench-xxxx/results.jsonl

Columns: benchmark, figure, value, baseline, ratio, target, met (yes / NO / "-" when the figure
has no target). The table is Markdown, so it can be pasted into RESULTS.md as it is.
"""

from __future__ import annotations

import sys
from pathlib import Path

from results import Figure, load

HEADER = ("benchmark", "figure", "value", "baseline", "ratio", "target", "met")


def number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if value == int(value) and abs(value) >= 100 or value == 0:
        text = f"{int(value):,}"
    elif abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".rstrip()


def verdict(figure: Figure) -> str:
    if figure.met is None:
        return "-"
    return "yes" if figure.met else "NO"


def rows(figures: list[Figure]) -> list[tuple[str, ...]]:
    return [
        (
            f.bench,
            f.figure,
            number(f.value, f.unit),
            number(f.baseline, f.unit),
            "-" if f.ratio is None else f"{f.ratio:.2f}",
            f.target or "-",
            verdict(f),
        )
        for f in figures
    ]


def table(figures: list[Figure]) -> str:
    body = rows(figures)
    widths = [max(len(r[i]) for r in [HEADER, *body]) for i in range(len(HEADER))]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(HEADER), rule, *(line(r) for r in body)])


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    figures = load(Path(argv[0]))
    if not figures:
        print("no figures recorded", file=sys.stderr)
        return 1
    print(table(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
