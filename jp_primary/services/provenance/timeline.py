"""A job's status timeline from its L&B (or HTCondor) history, laid out for an inline SVG.

The L&B plugin stores the whole history as ``fullStatusHistory``: one ``<status name=…
timestamp=… reason=… destination=… doneCode=…/>`` element per line (docs/lb-plugin.md). A
resubmission sends the job back to Waiting, so every Waiting after the first starts a new
branch: the job's life is one row per submission cycle, each forking from the end of the one
before. An HTCondor user log gives the same picture from its submit, execute, hold, terminate
and abort times; each execution after the first is a new branch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import unescape

from jp_primary.attributes.names import CONDOR_LOG, JP_PRIMARY, LB_ATTRIBUTES

_ATTR = re.compile(r'([A-Za-z]+)="([^"]*)"')
INCONSISTENCY = f"{JP_PRIMARY}:replayInconsistency"
# Layout of the drawing, in SVG user units (the picture scales to the page's width).
COLUMN = 96
ROW = 64
LEFT = 84
TOP = 28


@dataclass(frozen=True)
class Step:
    state: str
    at: datetime | None
    reason: str = ""
    where: str = ""
    done_code: str = ""
    x: int = 0
    y: int = 0


@dataclass(frozen=True)
class Branch:
    number: int  # 1 for the first submission, 2 for the first resubmission, ...
    steps: list[Step]
    y: int = 0
    fork: tuple[int, int] | None = None  # where it leaves the branch before it


@dataclass(frozen=True)
class Timeline:
    source: str  # "L&B", "HTCondor" or "" (no history stored)
    branches: list[Branch] = field(default_factory=list)
    inconsistency: str | None = None  # the replay-inconsistency flag, when the plugin set it
    width: int = 0
    height: int = 0

    @property
    def steps(self) -> list[Step]:
        return [s for b in self.branches for s in b.steps]


def _when(text: str) -> datetime | None:
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def lb_steps(history: str) -> list[Step]:
    """The ``fullStatusHistory`` elements, in order (lines that are not elements are skipped)."""
    steps = []
    for line in history.splitlines():
        attrs = {k: unescape(v) for k, v in _ATTR.findall(line)}
        if "name" not in attrs:
            continue
        steps.append(
            Step(
                state=attrs["name"].capitalize(),
                at=_when(attrs.get("timestamp", "")),
                reason=attrs.get("reason", ""),
                where=attrs.get("destination", ""),
                done_code=attrs.get("doneCode", ""),
            )
        )
    return steps


def lb_branches(steps: list[Step]) -> list[list[Step]]:
    """Every Waiting after the first starts a new submission cycle."""
    branches: list[list[Step]] = [[]]
    seen_waiting = False
    for step in steps:
        if step.state == "Waiting":
            if seen_waiting and branches[-1]:
                branches.append([])
            seen_waiting = True
        branches[-1].append(step)
    return [b for b in branches if b]


def condor_branches(values: dict[str, list[tuple[str, str]]]) -> list[list[Step]]:
    """Submit, then one branch per execution with the holds, the end or the removal after it."""
    events: list[Step] = []
    for submitted, _ in values.get("submitTime", []):
        events.append(Step("Submitted", _when(submitted), where=_first(values, "submitHost")))
    hosts = [h for h, _ in values.get("executeHost", [])]
    for index, (started, _) in enumerate(values.get("executeTime", [])):
        where = hosts[index] if index < len(hosts) else ""
        events.append(Step("Running", _when(started), where=where))
    reasons = [r for r, _ in values.get("holdReason", [])]
    for index, (held, _) in enumerate(values.get("holdTime", [])):
        events.append(
            Step("Held", _when(held), reason=reasons[index] if index < len(reasons) else "")
        )
    for ended, _ in values.get("terminateTime", []):
        normal = _first(values, "terminatedNormally") == "true"
        code = _first(values, "returnValue") if normal else _first(values, "terminatedBySignal")
        events.append(Step("Completed", _when(ended), done_code=code))
    for removed, _ in values.get("abortTime", []):
        events.append(Step("Removed", _when(removed), reason=_first(values, "abortReason")))
    events.sort(key=lambda s: s.at or datetime.min.replace(tzinfo=UTC))
    branches: list[list[Step]] = [[]]
    runs = 0
    for step in events:
        if step.state == "Running":
            runs += 1
            if runs > 1:
                branches.append([])
        branches[-1].append(step)
    return [b for b in branches if b]


def _first(values: dict[str, list[tuple[str, str]]], local: str) -> str:
    found = values.get(local)
    return found[0][0] if found else ""


def build(named_values: list[tuple[str, str]]) -> Timeline:
    """The timeline from ``(name, value)`` pairs of a job, oldest first."""
    lb_history = [v for n, v in named_values if n == f"{LB_ATTRIBUTES}:fullStatusHistory"]
    flags = [v for n, v in named_values if n == INCONSISTENCY]
    flag = flags[-1] if flags else None
    if lb_history:
        return _laid_out("L&B", lb_branches(lb_steps(lb_history[-1])), flag)
    condor: dict[str, list[tuple[str, str]]] = {}
    prefix = f"{CONDOR_LOG}:"
    for name, value in named_values:
        if name.startswith(prefix):
            condor.setdefault(name[len(prefix) :], []).append((value, name))
    if condor:
        return _laid_out("HTCondor", condor_branches(condor), flag)
    return Timeline("", inconsistency=flag)


def _laid_out(source: str, cycles: list[list[Step]], flag: str | None) -> Timeline:
    """Columns in time order across all branches, one row per branch."""
    branches: list[Branch] = []
    column = 0
    previous: Step | None = None
    for number, cycle in enumerate(cycles, start=1):
        y = TOP + (number - 1) * ROW + 12
        placed = []
        for step in cycle:
            x = LEFT + column * COLUMN + COLUMN // 2
            placed.append(_at(step, x, y))
            column += 1
        fork = (previous.x, previous.y) if previous is not None else None
        branches.append(Branch(number, placed, y, fork))
        previous = placed[-1]
    width = LEFT + max(column, 1) * COLUMN + 8
    height = TOP + len(branches) * ROW + 8
    return Timeline(source, branches, flag, width, height)


def _at(step: Step, x: int, y: int) -> Step:
    return Step(step.state, step.at, step.reason, step.where, step.done_code, x, y)
