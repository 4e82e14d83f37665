"""Replay of one gLite job's events through the L&B state machine, non-strict as JP used it.

``replay(events)`` sorts by sequence code (ties by timestamp), feeds the events one by one and
records a status-history entry on every state change. Each event is judged first (late? on
another resubmission branch? before the last deep resubmission?) and then applied: a late event
may still update data fields but never the major state. See docs/lb-plugin.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import attrgetter

from jp_primary.plugins.lb.condormachine import feed_condor
from jp_primary.plugins.lb.events import Event
from jp_primary.plugins.lb.seqcode import (
    LM,
    SeqCode,
    before_deep_resubmission,
    entered_wm_again,
    same_branch,
    with_component,
)
from jp_primary.plugins.lb.status import (
    JOBTYPES,
    REGJOB_JOBTYPES,
    Bookkeeping,
    HistoryEntry,
    JobStatus,
    State,
)
from jp_primary.plugins.lb.steps import (
    BADBRANCH,
    GOODBRANCH,
    IGNORE,
    LATE,
    TOOOLD,
    VERDICTS,
    BadEvent,
    Step,
)
from jp_primary.plugins.lb.transitions import TRANSITIONS

_RESETS_JW = (State.WAITING, State.READY, State.SCHEDULED)
# Events that change nothing.
_NO_EFFECT = frozenset({"Purge", "Listener", "CurDescr", "Chkpt", "ResourceUsage"})


def event_order_key(event: Event) -> tuple[SeqCode, int]:
    return event.seq, event.time_us


_ORDER = attrgetter("seq", "time_us")  # event_order_key without a Python call per event


@dataclass
class Replay:
    status: JobStatus
    history: list[HistoryEntry]
    events: list[Event]  # in replay (sorted) order
    problems: list[tuple[str, int | None]] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)  # per event in ``events``


def replay(events: Iterable[Event]) -> Replay:
    """Sort ``events`` and replay them from an empty status. Pure: the events are not changed."""
    ordered = sorted(events, key=_ORDER)
    machine = StateMachine()
    history: list[HistoryEntry] = []
    recorded = State.UNDEFINED
    for event in ordered:
        machine.feed(event)
        status = machine.status
        if status.state != recorded:
            history.append(
                HistoryEntry(
                    status.state,
                    status.state_enter_time_us or event.time_us,
                    status.reason,
                    status.destination,
                    status.done_code,
                )
            )
            recorded = status.state
    return Replay(machine.status, history, ordered, machine.problems, machine.verdicts)


class StateMachine:
    """Feeds events one at a time; ``status`` is the job status after the events so far."""

    def __init__(self) -> None:
        self.status = JobStatus()
        self.book = Bookkeeping()
        self.problems: list[tuple[str, int | None]] = []
        self.verdicts: list[str] = []
        self._condor_last: list[object] = [None]  # the Condor type's last accepted code

    def feed(self, event: Event) -> None:
        if event.type == "RegJob":
            # The JP plugin takes the owner and jobid from the registration, not from the replay.
            self.status.owner = event.user
            self.status.jobid = event.jobid
            if not self._register_type(event):
                self.verdicts.append(IGNORE)
                return
        if self.status.jobtype is None:
            self.verdicts.append("unregistered")
            return
        if self.status.jobtype == "CONDOR":
            self._feed_condor(event)
            return
        if self.status.jobtype not in ("SIMPLE", "DAG", "COLLECTION"):
            self.verdicts.append(IGNORE)  # PBS jobs have their own machine, not replayed
            return
        step = self._judge(event)
        try:
            transition = TRANSITIONS.get(event.type)
            if transition is None:
                if event.type not in _NO_EFFECT:
                    raise BadEvent(f"{event.type} is not a gLite job event")
            else:
                transition(self, step)
        except BadEvent as exc:
            outcome = "event partly applied" if exc.partly_applied else "event ignored"
            self.problems.append((f"{outcome}: {exc}", event.line))
            self.verdicts.append("bad")
            return
        if step.usable:
            self._after_accepted(step)
        if event.source == "NetworkServer":
            self._fill_network_server(event)
        self.verdicts.append(VERDICTS[step.res, step.fine])

    def _feed_condor(self, event: Event) -> None:
        try:
            self.verdicts.append(feed_condor(self, self._condor_last, event))
        except BadEvent as exc:
            self.problems.append((f"event ignored: {exc}", event.line))
            self.verdicts.append("bad")

    def _register_type(self, event: Event) -> bool:
        if self.status.jobtype is not None:
            return True
        declared = (event.get("jobtype") or "").upper()
        if declared not in REGJOB_JOBTYPES:
            self.problems.append((f"unknown job type {declared!r} in registration", event.line))
            return False
        self.status.jobtype = JOBTYPES.get(declared, declared)
        if declared not in JOBTYPES:
            self.problems.append((f"job type {declared} is not replayed", event.line))
        return True

    def _judge(self, event: Event) -> Step:
        status, book = self.status, self.book
        step = Step(event, status.state)
        if (status.state == State.ABORTED and event.type != "CollectionState") or status.state in (
            State.CANCELLED,
            State.CLEARED,
        ):
            step.res = LATE
        seq = event.seq
        if event.type != "Cancel" and book.last_seq and entered_wm_again(seq, book.last_seq):
            book.branch_tag_seq = book.deep_resubmit_seq = book.last_branch_seq = None
        if book.deep_resubmit_seq and before_deep_resubmission(seq, book.deep_resubmit_seq):
            step.res, step.fine = LATE, TOOOLD
        elif book.branch_tag_seq:
            if same_branch(seq, book.branch_tag_seq):
                if book.last_branch_seq is not None and seq < book.last_branch_seq:
                    step.res = LATE
                step.fine = GOODBRANCH
            else:
                step.res, step.fine = LATE, BADBRANCH
        elif book.last_seq is not None and seq < book.last_seq:
            step.res = LATE
        return step

    def _after_accepted(self, step: Step) -> None:
        status, book, event = self.status, self.book, step.event
        status.last_update_time_us = event.time_us
        if step.old_state != status.state:
            status.state_enter_time_us = event.time_us
            status.state_enter_times[status.state] = event.time_us
            if status.state in _RESETS_JW:
                status.jw_status = "UNKNOWN"
        if event.type == "Cancel":
            book.last_cancel_seq = event.seq
        elif step.lm_favour_lrms:
            # LM's Accepted/Transfer must not block later JobWrapper events (LM=0).
            book.last_seq = with_component(event.seq, LM, 0)
        elif not step.keep_last_seq:
            book.last_seq = event.seq
        if status.state != State.RUNNING:
            status.suspended, status.suspend_reason = False, None
        if step.fine == GOODBRANCH:
            book.last_branch_seq = event.seq

    def _fill_network_server(self, event: Event) -> None:
        if self.status.network_server is None:
            instance = event.src_instance
            separator = ":" if instance is not None else " "
            self.status.network_server = f"{event.host}{separator}{instance or ''}"
