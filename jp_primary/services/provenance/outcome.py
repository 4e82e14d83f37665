"""What both exports say about a job's run: when it started and ended, and how it ended."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from jp_primary.attributes.names import CONDOR_LOG, LB_ATTRIBUTES
from jp_primary.services.provenance.snapshot import JobSnapshot
from jp_primary.services.provenance.timeline import Timeline, build

FINAL = {"Done", "Aborted", "Cancelled", "Cleared", "Completed", "Removed"}
# Which stored files a run took in (inputs) and which it made (outputs); the others (L&B dumps,
# HTCondor logs) are records about the run, attributed to the service that uploaded them.
INPUT_CLASSES = frozenset({"isb", "jdl"})
OUTPUT_CLASSES = frozenset({"osb"})


@dataclass(frozen=True)
class Run:
    timeline: Timeline
    start: datetime | None
    end: datetime | None
    final_state: str | None
    succeeded: bool | None  # None: not finished (or nothing says)
    error: str | None
    where: str | None


def run_of(snapshot: JobSnapshot) -> Run:
    timeline = build([(v.name, v.value) for v in snapshot.values])
    steps = [s for s in timeline.steps if s.at is not None]
    start = steps[0].at if steps else None
    final = [s for s in steps if s.state != "Cleared"]
    last = final[-1] if final else (steps[-1] if steps else None)
    ended = bool(steps) and steps[-1].state in FINAL
    end = steps[-1].at if ended else None
    state = last.state if last is not None else None
    succeeded, error = _verdict(snapshot, state) if ended else (None, None)
    where = next((s.where for s in reversed(steps) if s.where), None)
    return Run(timeline, start, end, state, succeeded, error, where)


def _verdict(snapshot: JobSnapshot, state: str | None) -> tuple[bool, str | None]:
    if state == "Completed":  # HTCondor
        code = snapshot.first(f"{CONDOR_LOG}:returnValue")
        if code == "0":
            return True, None
        signal = snapshot.first(f"{CONDOR_LOG}:terminatedBySignal")
        return False, f"exit code {code}" if code else f"killed by signal {signal}"
    if state == "Removed":
        return False, snapshot.first(f"{CONDOR_LOG}:abortReason") or "removed"
    done = snapshot.first(f"{LB_ATTRIBUTES}:doneCode")
    if state == "Done" and done in (None, "OK"):
        return True, None
    reason = (
        snapshot.first(f"{LB_ATTRIBUTES}:failureReasons")
        or snapshot.first(f"{LB_ATTRIBUTES}:finalStatusReason")
        or snapshot.first(f"{LB_ATTRIBUTES}:reason")
    )
    return False, reason or f"the job ended {state}{f' ({done})' if done else ''}"
