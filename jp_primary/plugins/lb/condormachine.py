"""The L&B state machine of the native Condor job type (``RegJob`` with job type CONDOR).

L&B's Condor job type was fed by the Condor daemons' own logs, with sequence codes that name the
daemon log and the position in it (``seqcode.parse_condor_seqcode``). Its machine is small
(``processEvent_Condor`` of the original, docs/condor.md):

| event | state | Condor status |
|---|---|---|
| RegJob | Submitted | Idle |
| CondorMatch | Ready (destination host kept) | Idle |
| CondorReject | Aborted (NOMATCH: reason "No match found.") | Unexpanded |
| CondorShadowStarted | Ready | Idle |
| CondorStarterStarted from the startd (SRC S) | Scheduled | Idle |
| CondorStarterStarted from the starter (SRC s) | Running (universe, starter pid) | Running |
| CondorShadowExited, CondorStarterExited | Done | Completed |
| CondorResourceUsage, CondorError | no effect | |

An event whose code sorts before the last accepted one is late: it changes data, not the state.
The replay (``statemachine.StateMachine``) calls ``feed_condor`` for jobs registered as CONDOR.
"""

from __future__ import annotations

from jp_primary.plugins.lb.events import Event
from jp_primary.plugins.lb.seqcode import CONDOR_SOURCES, CONDOR_SRC, is_condor_seqcode
from jp_primary.plugins.lb.status import JobStatus, State
from jp_primary.plugins.lb.steps import LATE, OK, BadEvent, Machine

CONDOR_EVENTS = frozenset(
    {
        "RegJob",
        "CondorMatch",
        "CondorReject",
        "CondorShadowStarted",
        "CondorShadowExited",
        "CondorStarterStarted",
        "CondorStarterExited",
        "CondorResourceUsage",
        "CondorError",
    }
)
_LOCATION = "this is CONDOR"  # what the original set when nothing else named a location


def daemon(event: Event) -> str | None:
    """The Condor daemon whose log the event came from (its code's SRC), if a Condor code."""
    if not is_condor_seqcode(event.seq):
        return None
    return CONDOR_SOURCES.get(chr(event.seq[CONDOR_SRC]))


def feed_condor(m: Machine, last_seq: list[object], event: Event) -> str:
    """Apply one event of a CONDOR job; return the verdict (``ok`` or ``late``).

    ``last_seq`` is a one-element holder of the last accepted code (the bookkeeping's
    ``last_seq`` is typed for gLite codes)."""
    if event.type not in CONDOR_EVENTS:
        raise BadEvent(f"{event.type} is not an event of the Condor job type")
    s = m.status
    last = last_seq[0]
    usable = not (last is not None and _sorts_after(last, event.seq))
    old_state = s.state
    _APPLY[event.type](s, event, usable, daemon(event))
    if usable:
        last_seq[0] = event.seq
        s.last_update_time_us = event.time_us
        if old_state != s.state:
            s.state_enter_time_us = event.time_us
            s.state_enter_times[s.state] = event.time_us
    if s.location is None:
        s.location = _LOCATION
    return OK if usable else LATE


def _sorts_after(last: object, seq: tuple[int, ...]) -> bool:
    return isinstance(last, tuple) and last > seq


def _set(s: JobStatus, name: str, value: str | None) -> None:
    if value is None:
        s.condor.pop(name, None)
    else:
        s.condor[name] = value


def _regjob(s: JobStatus, e: Event, usable: bool, src: str | None) -> None:
    if usable:
        s.state = State.SUBMITTED
        _set(s, "status", "Idle")
    s.jdl = e.get("jdl")


def _match(s: JobStatus, e: Event, usable: bool, src: str | None) -> None:
    if usable:
        s.state = State.READY
        _set(s, "status", "Idle")
    host = e.get("dest_host")
    if host is not None:
        _set(s, "destHost", host)
        s.destination = host


def _reject(s: JobStatus, e: Event, usable: bool, src: str | None) -> None:
    if usable:
        s.state = State.ABORTED
        _set(s, "status", "Unexpanded")
    if (e.get("status_code") or "").upper() == "NOMATCH":
        _set(s, "reason", "No match found.")
        s.reason = "No match found."


def _shadow_started(s: JobStatus, e: Event, usable: bool, src: str | None) -> None:
    if usable:
        s.state = State.READY
        _set(s, "status", "Idle")
    if src == "Schedd":
        _set(s, "shadowPid", e.get("shadow_pid"))


def _shadow_exited(s: JobStatus, e: Event, usable: bool, src: str | None) -> None:
    if usable:
        s.state = State.DONE
        _set(s, "status", "Completed")
    if src == "Shadow":
        _set(s, "shadowExitStatus", e.get("shadow_exit_status"))


def _starter_started(s: JobStatus, e: Event, usable: bool, src: str | None) -> None:
    if usable and src == "Startd":
        s.state = State.SCHEDULED
        _set(s, "status", "Idle")
    elif usable and src == "Starter":
        s.state = State.RUNNING
        _set(s, "status", "Running")
    if src == "Starter":
        _set(s, "universe", e.get("universe"))
        _set(s, "starterPid", e.get("starter_pid"))


def _starter_exited(s: JobStatus, e: Event, usable: bool, src: str | None) -> None:
    if usable:
        s.state = State.DONE
        _set(s, "status", "Completed")
    if src in ("Startd", "Starter"):
        _set(s, "starterPid", e.get("starter_pid"))
    if src == "Startd":
        _set(s, "starterExitStatus", e.get("starter_exit_status"))
    elif src == "Starter":
        _set(s, "jobPid", e.get("job_pid"))
        _set(s, "jobExitStatus", e.get("job_exit_status"))


def _no_effect(s: JobStatus, e: Event, usable: bool, src: str | None) -> None:
    return None


_APPLY = {
    "RegJob": _regjob,
    "CondorMatch": _match,
    "CondorReject": _reject,
    "CondorShadowStarted": _shadow_started,
    "CondorShadowExited": _shadow_exited,
    "CondorStarterStarted": _starter_started,
    "CondorStarterExited": _starter_exited,
    "CondorResourceUsage": _no_effect,
    "CondorError": _no_effect,
}
