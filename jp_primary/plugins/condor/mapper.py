"""HTCondor user-log events to generic L&B events, as the WMS LogMonitor translated them (pure).

Each job of a log gets a ``JobMapper``. It opens with a synthetic RegJob (job type SIMPLE, so
the gLite state machine replays the job) and turns every Condor event into zero or more L&B
events of source LogMonitor. Sequence codes follow the log: the LM counter is the position of
the L&B event in the job's stream, so the replay keeps the log's order even where the clock
did not. The table and the reason for each choice are in docs/condor.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from htcondor2 import JobEventType as Ev

from jp_primary.plugins.condor.summary import host_of
from jp_primary.plugins.lb.events import Event

SOURCE = "LogMonitor"
# The WMS LogMonitor's reasons, verbatim where it had one.
OK_REASON = "Job terminated successfully"
NONZERO_REASON = "Warning: job exit code != 0"
ABORT_REASON = "Aborted by user."
HELD_PREFIX = "Got a job held event, reason: "
GLOBUS_OK_REASON = "Job successfully submitted to Globus"
GRID_OK_REASON = "Job successfully submitted to the grid resource"
GLOBUS_DOWN_REASON = "Globus resource down"


@dataclass(slots=True)
class CondorEvent:
    """One user-log event as the reader hands it over (the fields of ``JobEvent.items()``)."""

    cluster: int
    proc: int
    type: int  # htcondor2.JobEventType value
    time_us: int  # microseconds since the epoch, UTC
    fields: Mapping[str, object] = field(default_factory=dict)

    @property
    def job(self) -> str:
        return f"{self.cluster}.{self.proc}"


_NOTHING: list[Event] = []  # returned for unmapped events; callers only read it


def _seq(counter: int) -> tuple[int, ...]:
    # UI..JSS stay 0, so the replay never sees the job "enter the WMS again"; LM carries the order.
    return (0, 0, 0, 0, 0, counter, 0, 0, 0)


class JobMapper:
    """Maps the events of one Condor job, in log order, to L&B events."""

    __slots__ = ("jobid", "host", "_counter", "_started", "_ended")

    def __init__(self, jobid: str, submit_host: str | None = None) -> None:
        self.jobid = jobid
        self.host = submit_host or "localhost"
        self._counter = 0
        self._started = False
        self._ended = False

    def _event(self, kind: str, when: int, fields: dict[str, str | None]) -> Event:
        self._counter += 1
        return Event(
            kind, self.jobid, _seq(self._counter), when, SOURCE, self.host, "", None, None, fields
        )

    def map(self, event: CondorEvent) -> list[Event]:
        """The L&B events for ``event`` (the first call also yields the registration)."""
        handler = _HANDLERS.get(event.type)
        if (handler is None and self._started) or self._ended:
            # Most events of a long log (image size, ...) map to nothing: no allocation. After
            # its termination or removal HTCondor writes nothing of a job; if a damaged log
            # does, it is not mapped (the status stays the one the job left the queue with).
            return _NOTHING
        if event.type in _FINAL:
            self._ended = True
        out: list[Event] = []
        if not self._started:
            self._started = True
            if event.type == Ev.SUBMIT:
                address = event.fields.get("SubmitHost")
                if address:
                    self.host = host_of(str(address))
            # The registration that gives the replay its job type; the schedd plays the NS.
            regjob: dict[str, str | None] = {"ns": self.host, "jobtype": "SIMPLE"}
            out.append(
                Event(
                    "RegJob",
                    self.jobid,
                    _seq(0),
                    event.time_us,
                    SOURCE,
                    self.host,
                    "",
                    None,
                    None,
                    regjob,
                )
            )
        if handler is not None:
            handler(self, event, out)
        return out

    # -- one method per Condor event type (docs/condor.md, "The mapping") -------------------

    def submit(self, e: CondorEvent, out: list[Event]) -> None:
        out.append(
            self._event(
                "Accepted",
                e.time_us,
                {
                    "from": "JobController",
                    "from_host": self.host,
                    "from_instance": None,
                    "local_jobid": e.job,
                },
            )
        )

    def execute(self, e: CondorEvent, out: list[Event]) -> None:
        out.append(self._event("Running", e.time_us, {"node": _host(e, "ExecuteHost")}))

    def reconnected(self, e: CondorEvent, out: list[Event]) -> None:
        # Still running where it ran: Running again keeps the node; the state does not change.
        node = _host(e, "StartdAddr") or _slot_host(e.fields.get("StartdName"))
        out.append(self._event("Running", e.time_us, {"node": node}))

    def terminated(self, e: CondorEvent, out: list[Event]) -> None:
        self._done_from_termination(e, out)

    def _done_from_termination(self, e: CondorEvent, out: list[Event]) -> None:
        fields: dict[str, str | None]
        if e.fields.get("TerminatedNormally"):
            code = _int(e.fields.get("ReturnValue"))
            reason = OK_REASON if code == 0 else NONZERO_REASON
            fields = {"status_code": "OK", "reason": reason, "exit_code": str(code)}
        else:
            signal = e.fields.get("TerminatedBySignal")
            reason = (
                "Abnormal termination" if signal is None else f"Job terminated by signal {signal}"
            )
            fields = {"status_code": "FAILED", "reason": reason, "exit_code": None}
        out.append(self._event("Done", e.time_us, fields))

    def aborted(self, e: CondorEvent, out: list[Event]) -> None:
        out.append(
            self._event("Cancel", e.time_us, {"status_code": "DONE", "reason": ABORT_REASON})
        )
        out.append(
            self._event(
                "Done",
                e.time_us,
                {"status_code": "CANCELLED", "reason": ABORT_REASON, "exit_code": None},
            )
        )

    def held(self, e: CondorEvent, out: list[Event]) -> None:
        reason = HELD_PREFIX + str(e.fields.get("HoldReason") or "")
        out.append(
            self._event(
                "Done", e.time_us, {"status_code": "FAILED", "reason": reason, "exit_code": None}
            )
        )

    def requeued(self, e: CondorEvent, out: list[Event]) -> None:
        """Back to the queue (released, evicted, shadow exception, reconnection failed)."""
        if e.type == Ev.JOB_EVICTED and e.fields.get("TerminatedAndRequeued"):
            self._done_from_termination(e, out)
        reason = _REQUEUE_REASONS[e.type]
        detail = e.fields.get("Reason") or e.fields.get("Message")
        if detail:
            reason = f"{reason}: {detail}"
        out.append(
            self._event(
                "Resubmission", e.time_us, {"result": "WILLRESUB", "reason": reason, "tag": None}
            )
        )
        out.append(
            self._event(
                "EnQueued",
                e.time_us,
                {"queue": self.host, "result": "OK", "job": None, "reason": reason},
            )
        )

    def suspended(self, e: CondorEvent, out: list[Event]) -> None:
        kind = "Suspend" if e.type == Ev.JOB_SUSPENDED else "Resume"
        out.append(self._event(kind, e.time_us, {"reason": None}))

    def grid_submit(self, e: CondorEvent, out: list[Event]) -> None:
        globus = e.type == Ev.GLOBUS_SUBMIT
        out.append(
            self._event(
                "Transfer",
                e.time_us,
                {
                    "destination": "LRMS",
                    "dest_host": _text(e.fields.get("GridResource") or e.fields.get("RMContact")),
                    "dest_instance": None,
                    "job": _text(e.fields.get("GridJobId") or e.fields.get("JMContact")),
                    "result": "OK",
                    "reason": GLOBUS_OK_REASON if globus else GRID_OK_REASON,
                    "dest_jobid": None,
                },
            )
        )

    def grid_submit_failed(self, e: CondorEvent, out: list[Event]) -> None:
        reason = _text(e.fields.get("Reason")) or "Globus job submission failed"
        out.append(
            self._event(
                "Transfer",
                e.time_us,
                {
                    "destination": "LRMS",
                    "dest_host": None,
                    "dest_instance": None,
                    "job": None,
                    "result": "FAIL",
                    "reason": reason,
                    "dest_jobid": None,
                },
            )
        )

    def globus_down(self, e: CondorEvent, out: list[Event]) -> None:
        out.append(
            self._event(
                "Done",
                e.time_us,
                {"status_code": "FAILED", "reason": GLOBUS_DOWN_REASON, "exit_code": None},
            )
        )


_FINAL = frozenset({int(Ev.JOB_TERMINATED), int(Ev.JOB_ABORTED)})
_REQUEUE_REASONS = {
    Ev.JOB_RELEASED: "Job was released",
    Ev.JOB_EVICTED: "Job was evicted and requeued",
    Ev.SHADOW_EXCEPTION: "Shadow exception, job requeued",
    Ev.JOB_RECONNECT_FAILED: "Job reconnection failed, job requeued",
}

_HANDLERS = {
    Ev.SUBMIT: JobMapper.submit,
    Ev.EXECUTE: JobMapper.execute,
    Ev.JOB_RECONNECTED: JobMapper.reconnected,
    Ev.JOB_TERMINATED: JobMapper.terminated,
    Ev.JOB_ABORTED: JobMapper.aborted,
    Ev.JOB_HELD: JobMapper.held,
    Ev.JOB_RELEASED: JobMapper.requeued,
    Ev.JOB_EVICTED: JobMapper.requeued,
    Ev.SHADOW_EXCEPTION: JobMapper.requeued,
    Ev.JOB_RECONNECT_FAILED: JobMapper.requeued,
    Ev.JOB_SUSPENDED: JobMapper.suspended,
    Ev.JOB_UNSUSPENDED: JobMapper.suspended,
    Ev.GRID_SUBMIT: JobMapper.grid_submit,
    Ev.GLOBUS_SUBMIT: JobMapper.grid_submit,
    Ev.GLOBUS_SUBMIT_FAILED: JobMapper.grid_submit_failed,
    Ev.GLOBUS_RESOURCE_DOWN: JobMapper.globus_down,
}
# Condor event types that yield L&B events; every other type (image size, disconnected, file
# transfer, ...) changes nothing in the L&B status and is not mapped (docs/condor.md).
MAPPED_TYPES = frozenset(int(t) for t in _HANDLERS)


def _text(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _host(e: CondorEvent, key: str) -> str | None:
    address = e.fields.get(key)
    return host_of(str(address)) if address else None


def _slot_host(name: object) -> str | None:
    """``slot1@worker1.example.org`` -> ``worker1.example.org``."""
    return str(name).rpartition("@")[2] or None if name else None


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return -1
