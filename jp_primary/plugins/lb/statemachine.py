"""Replay of one gLite job's events through the L&B state machine, non-strict as JP used it.

``replay(events)`` sorts by sequence code (ties by timestamp), feeds the events one by one and
records a status-history entry on every state change. Each event is judged first (late? on
another resubmission branch? before the last deep resubmission?) and then applied: a late event
may still update data fields but never the major state. See docs/lb-plugin.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import attrgetter

from jp_primary.plugins.lb.events import Event
from jp_primary.plugins.lb.seqcode import (
    LM,
    SeqCode,
    SeqCodeError,
    before_deep_resubmission,
    entered_wm_again,
    parse_seqcode,
    same_branch,
    with_component,
)
from jp_primary.plugins.lb.status import (
    JOBTYPES,
    REGJOB_JOBTYPES,
    Bookkeeping,
    Branch,
    DoneCode,
    HistoryEntry,
    JobStatus,
    State,
)

# Verdicts on an event: usable for the major state, late (data only), or ignored.
OK, LATE, IGNORE = "ok", "late", "ignore"
# Finer verdicts about resubmission branches.
NONE, TOOOLD, BADBRANCH, GOODBRANCH = "none", "tooold", "badbranch", "goodbranch"
_VERDICTS = {
    (res, fine): res if fine == NONE else f"{res}/{fine}"
    for res in (OK, LATE, IGNORE)
    for fine in (NONE, TOOOLD, BADBRANCH, GOODBRANCH)
}

_RESETS_JW = (State.WAITING, State.READY, State.SCHEDULED)
# Events that change nothing, and events whose sequence code must not move ``last_seq``.
_NO_EFFECT = frozenset({"Purge", "Listener", "CurDescr", "Chkpt", "ResourceUsage"})
_KEEP_LAST_SEQ = frozenset({"ChangeACL", "GrantPayloadOwnership", "TakePayloadOwnership"})


class BadEvent(Exception):
    """An event the state machine cannot interpret (unknown source or enum value)."""


def event_order_key(event: Event) -> tuple[SeqCode, int]:
    return event.seq, event.time_us


_ORDER = attrgetter("seq", "time_us")  # event_order_key without a Python call per event


@dataclass(slots=True)
class Step:
    """The judgement of one event while it is being applied."""

    event: Event
    old_state: State
    res: str = OK
    fine: str = NONE
    lm_favour_lrms: bool = False
    keep_last_seq: bool = False

    @property
    def usable(self) -> bool:
        return self.res == OK

    @property
    def usable_branch(self) -> bool:
        return self.fine not in (TOOOLD, BADBRANCH)


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
        self._handlers: dict[str, Callable[[Step], None]] = _handlers(self)

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
        if self.status.jobtype not in ("SIMPLE", "DAG", "COLLECTION"):
            self.verdicts.append(IGNORE)  # PBS and Condor jobs have their own machines
            return
        step = self._judge(event)
        try:
            handler = self._handlers.get(event.type)
            if handler is None:
                if event.type not in _NO_EFFECT:
                    raise BadEvent(f"{event.type} is not a gLite job event")
            else:
                handler(step)
        except BadEvent as exc:
            self.problems.append((f"event ignored: {exc}", event.line))
            self.verdicts.append("bad")
            return
        if step.usable:
            self._after_accepted(step)
        if event.source == "NetworkServer":
            self._fill_network_server(event)
        self.verdicts.append(_VERDICTS[step.res, step.fine])

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

    # -- helpers shared by the handlers -------------------------------------------------------

    def location(self, source: str | None, host: str | None, instance: str | None) -> str:
        return f"{source or '(null)'}/{host or '(null)'}/{instance or '(null)'}"

    def update_branch(
        self,
        seq: SeqCode,
        *,
        destination: str | None = None,
        ce_node: str | None = None,
        jdl: str | None = None,
    ) -> None:
        branch = self.book.branches.setdefault(seq[2], Branch(seq[2]))
        if destination is not None:
            branch.destination = destination
        if ce_node is not None:
            branch.ce_node = ce_node
        if jdl is not None:
            branch.jdl = jdl

    def load_branch(self) -> None:
        """Take destination/CE/JDL from the really-running branch and the two before it."""
        tag = self.book.branch_tag_seq
        if tag is None or not self.book.branches:
            return
        ordered = sorted(self.book.branches.values(), key=lambda branch: branch.wm)
        index = next((i for i, b in enumerate(ordered) if b.wm == tag[2]), len(ordered))
        for branch in ordered[max(0, index - 2) : index + 1]:
            if branch.destination is not None:
                self.status.destination = branch.destination
            if branch.ce_node is not None:
                self.status.ce_node = branch.ce_node
            if branch.jdl is not None:
                self.status.matched_jdl = branch.jdl

    def reset_branches(self, event: Event) -> None:
        """Deep resubmission or abort: forget the branches, set the deep boundary."""
        self.book.resubmit_type = "WILLRESUB"
        self.status.possible_destinations = []
        self.status.possible_ce_nodes = []
        self.book.branches = {}
        self.status.payload_running = False
        self.book.branch_tag_seq = None
        self.book.deep_resubmit_seq = event.seq

    def add_tag(self, name: str, value: str, seq: SeqCode) -> None:
        """Later sequence code wins per case-insensitive tag name."""
        key = name.lower()
        current = self.status.user_tags.get(key)
        if current is None or seq > current[2]:
            kept_name = current[0] if current is not None else name
            self.status.user_tags[key] = (kept_name, value, seq)


def parsable_seqcode(text: str | None) -> SeqCode | None:
    if text is None:
        return None
    try:
        return parse_seqcode(text)
    except SeqCodeError:
        return None


def done_code_of(status_code: str | None) -> int:
    names = {"OK": DoneCode.OK, "FAILED": DoneCode.FAILED, "CANCELLED": DoneCode.CANCELLED}
    if status_code is None or status_code.upper() not in names:
        raise BadEvent(f"unexpected Done status code {status_code!r}")
    return int(names[status_code.upper()])


def _handlers(machine: StateMachine) -> dict[str, Callable[[Step], None]]:
    from jp_primary.plugins.lb import transitions

    return transitions.handlers(machine)
