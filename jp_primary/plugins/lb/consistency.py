"""Detection of the known bad replay: a LogMonitor Done/Failed over a really running payload.

The JobWrapper (source LRMS) logs ReallyRunning when the payload starts. If the network between
the worker node and the WMS breaks, the LogMonitor gives up on the job, logs Done/FAILED (and a
resubmission). That Done carries an LM counter above everything logged on the worker node, so
the faithful replay ends in Done/FAILED although the payload was really running. The replay is
left as it is; this module only describes the contradiction (see docs/lb-plugin.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from jp_primary.plugins.lb.events import Event
from jp_primary.plugins.lb.history import final_entry
from jp_primary.plugins.lb.statemachine import Replay
from jp_primary.plugins.lb.status import State
from jp_primary.timefmt import micros_text

PAYLOAD_RUNNING = "lm-failed-while-payload-running"
JOBWRAPPER_DISAGREES = "jobwrapper-done-contradicts-lm"


@dataclass(frozen=True)
class Inconsistency:
    kind: str
    description: str
    time_us: int

    @property
    def value(self) -> str:
        return f"{self.kind}: {self.description}"


def find_inconsistency(result: Replay) -> Inconsistency | None:
    """The bad-scenario contradiction in ``result``, or None when the replay is consistent."""
    final = final_entry(result.history)
    if final is None or final.state != State.DONE:
        return None
    deciding = _deciding_done(result)
    if deciding is None or (deciding.get("status_code") or "").upper() != "FAILED":
        return None
    branch = deciding.seq[2]
    started = [
        e
        for e in result.events
        if e.type == "ReallyRunning" and e.source == "LRMS" and e.seq[2] == branch
    ]
    if not started:
        return None
    wrapper_done = [
        e
        for e in result.events
        if e.type == "Done"
        and e.source == "LRMS"
        and e.seq[2] == branch
        and e.seq > started[-1].seq
    ]
    reason = deciding.get("reason") or "no reason given"
    if not wrapper_done:
        return Inconsistency(
            PAYLOAD_RUNNING,
            "the JobWrapper reported the payload ReallyRunning at"
            f" {micros_text(started[-1].time_us)}"
            f" (resubmission branch WM={branch}) and never reported it Done; the {deciding.source}"
            f" Done FAILED ({reason}) at {micros_text(deciding.time_us)} decided the status",
            deciding.time_us,
        )
    own = wrapper_done[-1]
    own_code = (own.get("status_code") or "").upper()
    if own_code == "FAILED":
        return None
    return Inconsistency(
        JOBWRAPPER_DISAGREES,
        f"the JobWrapper reported Done {own_code} (exit code {own.get('exit_code')}) at"
        f" {micros_text(own.time_us)} but the {deciding.source} Done FAILED ({reason}) at"
        f" {micros_text(deciding.time_us)} decided the status",
        deciding.time_us,
    )


def _deciding_done(result: Replay) -> Event | None:
    """The last accepted Done from outside the worker node (the one that set the Done state)."""
    for event, verdict in zip(reversed(result.events), reversed(result.verdicts), strict=True):
        if event.type == "Done" and event.source != "LRMS" and verdict.startswith("ok"):
            return event
    return None
