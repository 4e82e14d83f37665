"""Per-event-type transitions of the gLite state machine (§6.4 of the reference).

``TRANSITIONS`` maps an event type to its handler. A handler gets the ``Machine`` (status,
bookkeeping, problems) and the judged ``Step``. It changes the major state only through
``_enter``, which does so when the step is usable (not late), and it updates data fields in any
case, as the non-strict original did.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from jp_primary.plugins.lb.branches import load_branch, reset_branches, update_branch
from jp_primary.plugins.lb.fields import (
    done_code_of,
    exit_code,
    histogram,
    integer,
    parsable_seqcode,
)
from jp_primary.plugins.lb.seqcode import SeqCode
from jp_primary.plugins.lb.status import DoneCode, JobStatus, State
from jp_primary.plugins.lb.steps import (
    BADBRANCH,
    GOODBRANCH,
    IGNORE,
    LATE,
    OK,
    TOOOLD,
    BadEvent,
    Machine,
    Step,
)

Transition = Callable[[Machine, Step], None]

_LRMS_STATES = (State.RUNNING, State.DONE)
_CLEAR_REASONS = {
    "USER": "user retrieved output sandbox",
    "TIMEOUT": "timed out, resource purge forced",
    "NOOUTPUT": "no output was generated",
}


class _Keep(Enum):
    KEEP = "keep"


_KEEP = _Keep.KEEP  # "leave this field as it is" (None is a value: it clears the field)


def _enter(
    m: Machine,
    step: Step,
    state: State,
    location: str | _Keep = _KEEP,
    reason: str | None | _Keep = _KEEP,
) -> bool:
    """Move to ``state`` (with location and reason) if the step is usable; say whether it was."""
    if not step.usable:
        return False
    s = m.status
    s.state = state
    if location is not _KEEP:
        s.location = location
    if reason is not _KEEP:
        s.reason = reason
    return True


def location(source: str | None, host: str | None, instance: str | None) -> str:
    return f"{source or '(null)'}/{host or '(null)'}/{instance or '(null)'}"


def _here(step: Step) -> str:
    """The location of the event's own component."""
    e = step.event
    return location(e.source, e.host, e.src_instance)


def transfer(m: Machine, step: Step) -> None:
    e, s, result = step.event, m.status, (step.event.get("result") or "").upper()
    new_state: State | None = None
    if result == "OK":
        if e.source == "UserInterface":
            new_state = State.WAITING
        elif e.source == "JobController":
            new_state = State.READY
        elif e.source == "LogMonitor":
            if step.old_state in _LRMS_STATES:
                s.state_enter_times[State.SCHEDULED] = e.time_us
                step.res = LATE
            new_state, step.lm_favour_lrms = State.SCHEDULED, True
        else:
            raise BadEvent(f"Transfer from {e.source}")
    elif result == "FAIL":
        if e.source == "UserInterface":
            new_state = State.SUBMITTED
        elif e.source in ("JobController", "LogMonitor"):
            if step.old_state in _LRMS_STATES:
                step.res = LATE
            new_state = State.READY
        else:
            raise BadEvent(f"Transfer from {e.source}")
    else:
        step.res = IGNORE
    if new_state is not None:
        if result == "OK":
            where = location(e.get("destination"), e.get("dest_host"), e.get("dest_instance"))
        else:
            where = _here(step)
        _enter(m, step, new_state, where, e.get("reason"))
    job = e.get("job")
    if e.source == "UserInterface":
        s.jdl = s.jdl if s.jdl is not None else job
    elif e.source == "JobController":
        s.condor_jdl = job
    elif e.source == "LogMonitor":
        s.rsl = job
    else:
        raise BadEvent(f"Transfer from {e.source}")


def accepted(m: Machine, step: Step) -> None:
    e, s = step.event, m.status
    if e.source == "NetworkServer":
        new_state = State.WAITING
    elif e.source == "LogMonitor":
        if step.old_state in _LRMS_STATES:
            step.res = LATE
        new_state, step.lm_favour_lrms = State.READY, True
    elif e.source == "LRMS":
        new_state = State.SCHEDULED
    else:
        raise BadEvent(f"Accepted from {e.source}")
    _enter(m, step, new_state, _here(step))
    if e.source == "NetworkServer":
        s.ui_host = e.get("from_host")
    elif e.source == "LogMonitor":
        s.condor_id = e.get("local_jobid")
    else:
        s.globus_id = e.get("local_jobid")


_REFUSED_TARGETS = {
    "NetworkServer": State.SUBMITTED,
    "LogMonitor": State.READY,
    "LRMS": State.READY,
}


def refused(m: Machine, step: Step) -> None:
    e = step.event
    target = _REFUSED_TARGETS.get(e.source)
    if target is None:
        raise BadEvent(f"Refused from {e.source}")
    where = location(e.get("from"), e.get("from_host"), e.get("from_instance"))
    _enter(m, step, target, where, e.get("reason"))


def enqueued(m: Machine, step: Step) -> None:
    e, s, result = step.event, m.status, (step.event.get("result") or "").upper()
    new_state: State | None = None
    if result == "OK":
        if e.source == "NetworkServer" or e.source == "LogMonitor":
            new_state = State.WAITING
        elif e.source == "WorkloadManager":
            if step.old_state in _LRMS_STATES:
                step.res = LATE
            update_branch(m.book, e.seq, jdl=e.get("job"))
            new_state = State.READY
        else:
            raise BadEvent(f"EnQueued from {e.source}")
    elif result == "FAIL":
        if e.source in ("NetworkServer", "WorkloadManager"):
            new_state = State.WAITING
        elif e.source == "LogMonitor":
            new_state = step.old_state
        else:
            raise BadEvent(f"EnQueued from {e.source}")
    else:
        step.res = IGNORE
    if new_state is not None:
        where = location(e.get("queue"), e.host, e.src_instance) if result == "OK" else _here(step)
        entered = _enter(m, step, new_state, where, e.get("reason"))
        if entered and result == "OK" and e.source == "LogMonitor":
            s.resubmitted = True
    if e.source == "NetworkServer":
        if s.jdl is None or result == "OK":
            s.jdl = e.get("job")
    elif e.source == "WorkloadManager":
        s.matched_jdl = e.get("job")
    elif e.source != "LogMonitor":
        raise BadEvent(f"EnQueued from {e.source}")


def dequeued(m: Machine, step: Step) -> None:
    e = step.event
    if e.source == "WorkloadManager":
        new_state = State.WAITING
    elif e.source == "JobController":
        if step.old_state in _LRMS_STATES:
            step.res = LATE
        new_state = State.READY
    else:
        raise BadEvent(f"DeQueued from {e.source}")
    _enter(m, step, new_state, _here(step))


def helper(m: Machine, step: Step) -> None:
    _enter(m, step, State.WAITING, location(step.event.get("helper_name"), step.event.host, None))


def running(m: Machine, step: Step) -> None:
    s, node = m.status, step.event.get("node")
    if _enter(m, step, State.RUNNING, location("LRMS", "worknode", node)):
        s.jw_status = "WRAPPER_RUNNING"
    if step.usable_branch:
        s.ce_node = node
    if node is not None:
        update_branch(m.book, step.event.seq, ce_node=node)
        s.possible_ce_nodes.append(node)


def really_running(m: Machine, step: Step) -> None:
    e, s, book = step.event, m.status, m.book
    if step.fine == BADBRANCH:
        m.problems.append(("ReallyRunning on another resubmission branch", e.line))
        return
    if step.res == LATE and step.fine == TOOOLD:
        return
    if e.source == "LRMS":
        book.branch_tag_seq = e.seq
        if step.res == OK:
            book.last_branch_seq = e.seq
            s.state = State.RUNNING
    elif e.source == "LogMonitor":
        wn_seq = parsable_seqcode(e.get("wn_seq"))
        if wn_seq is None and (book.branch_tag_seq is None or book.last_branch_seq is None):
            raise BadEvent("LogMonitor ReallyRunning without a parsable wn_seq")
        if book.branch_tag_seq is None:
            book.branch_tag_seq = wn_seq
        if book.last_branch_seq is None and step.res == OK:
            book.last_branch_seq = wn_seq
            s.state = State.RUNNING
    tag = book.branch_tag_seq
    on_tagged_branch = tag is not None and book.last_seq is not None and book.last_seq[2] == tag[2]
    if step.res == LATE and book.last_branch_seq is None and on_tagged_branch:
        # Best effort: if the job is on that branch, what was processed so far counts.
        book.last_branch_seq = book.last_seq
    s.jw_status = "PAYLOAD_RUNNING"
    s.payload_running = True
    load_branch(m)


def suspend(m: Machine, step: Step) -> None:
    s = m.status
    if step.usable and s.state == State.RUNNING:
        s.suspended = step.event.type == "Suspend"
        s.suspend_reason = step.event.get("reason")


def resubmission(m: Machine, step: Step) -> None:
    e, result = step.event, (step.event.get("result") or "").upper()
    if step.usable and result == "WONTRESUB":
        m.status.reason = e.get("reason")
    if result == "WONTRESUB":
        m.book.resubmit_type = "WONTRESUB"
    elif result == "WILLRESUB" and e.source == "WorkloadManager":
        reset_branches(m, e)
    elif result == "SHALLOW":
        m.book.resubmit_type = "SHALLOW"


def done(m: Machine, step: Step) -> None:
    e, s = step.event, m.status
    if e.source == "LRMS":
        # The JobWrapper's Done does not make the job Done (only the LM/JC one does).
        if step.usable:
            s.jw_status, s.payload_running = "DONE", False
        return
    status_code = e.get("status_code")
    code = done_code_of(status_code)
    reason = e.get("reason")
    state = State.CANCELLED if code == DoneCode.CANCELLED else State.DONE
    where = "none" if code in (DoneCode.OK, DoneCode.CANCELLED) else _here(step)
    if _enter(m, step, state, where, reason):
        s.jw_status = "DONE"
        if step.fine == GOODBRANCH:
            s.payload_running = False
        if code == DoneCode.FAILED:
            _append_failure(s, f"{reason or '(null)'} [{s.destination or '(null)'}]")
    if code is None:
        # KILLED (or a code outside the enum): as in the original, the job is Done, but no done
        # code or exit code is recorded and the bookkeeping after the event is skipped.
        raise BadEvent(
            f"Done status code {status_code!r} gives no done code", partly_applied=step.usable
        )
    if code == DoneCode.OK:
        s.exit_code = exit_code(e.get("exit_code"))
    elif code == DoneCode.FAILED and not step.usable:
        _append_failure(s, f"{reason or '(null)'} [delayed event, destination unreliable]")
    if code != DoneCode.OK:
        s.exit_code = 0
    s.done_code = int(code)


def _append_failure(s: JobStatus, text: str) -> None:
    s.failure_reasons = f"{s.failure_reasons}\n{text}" if s.failure_reasons else text


def cancel(m: Machine, step: Step) -> None:
    e, s, book = step.event, m.status, m.book
    if step.fine == BADBRANCH or (book.last_cancel_seq and e.seq < book.last_cancel_seq):
        step.res = LATE
    code = (e.get("status_code") or "").upper()
    if code == "DONE" and _enter(m, step, State.CANCELLED, "none", e.get("reason")):
        s.remove_from_proxy = True
        book.last_seq = e.seq
    if step.usable:
        if code == "REQ":
            s.cancelling = True
        elif code in ("DONE", "ABORT"):
            s.cancelling = False
    s.cancel_reason = e.get("reason")


def abort(m: Machine, step: Step) -> None:
    e = step.event
    if e.source == "WorkloadManager":
        step.res = OK  # the WM's Abort is always accepted
    if _enter(m, step, State.ABORTED, "none", e.get("reason")):
        m.status.remove_from_proxy = True
        reset_branches(m, e)


def clear(m: Machine, step: Step) -> None:
    reason = (step.event.get("reason") or "").upper()
    text = _CLEAR_REASONS.get(reason)
    entered = _enter(m, step, State.CLEARED, "none", _KEEP if text is None else text)
    if entered:
        m.status.remove_from_proxy = True
    if text is None:
        # As in the original: the job is Cleared, its reason and sandbox_retrieved stay as they
        # were, and the bookkeeping after the event is skipped.
        raise BadEvent(f"unexpected Clear reason {reason!r}", partly_applied=entered)
    m.status.sandbox_retrieved = reason


def match(m: Machine, step: Step) -> None:
    e, s, dest = step.event, m.status, step.event.get("dest_id")
    _enter(m, step, State.WAITING, location("WorkloadManager", e.host, e.src_instance))
    if step.usable_branch:
        s.destination = dest
    if dest is not None:
        update_branch(m.book, e.seq, destination=dest)
        s.possible_destinations.append(dest)


def pending(m: Machine, step: Step) -> None:
    e = step.event
    where = location("WorkloadManager", e.host, e.src_instance)
    _enter(m, step, State.WAITING, where, e.get("reason"))


def regjob(m: Machine, step: Step) -> None:
    e, s = step.event, m.status
    _enter(m, step, State.SUBMITTED)
    s.jdl = e.get("jdl") or s.jdl
    s.parent_job = e.get("parent")
    s.network_server = e.get("ns")
    s.children_num = integer(e.get("nsubjobs"), 0) or 0
    if (e.get("jobtype") or "").upper() in ("DAG", "PARTITIONED", "COLLECTION"):
        s.children_hist = {State.UNKNOWN: s.children_num}
    s.seed = e.get("seed")


def user_tag(m: Machine, step: Step) -> None:
    name, value = step.event.get("name"), step.event.get("value")
    if name is None or value is None:
        raise BadEvent("UserTag without a name or value")
    _add_tag(m.status, name, value, step.event.seq)


def _add_tag(s: JobStatus, name: str, value: str, seq: SeqCode) -> None:
    """Later sequence code wins per case-insensitive tag name."""
    key = name.lower()
    current = s.user_tags.get(key)
    if current is None or seq > current[2]:
        kept_name = current[0] if current is not None else name
        s.user_tags[key] = (kept_name, value, seq)


def keep_seq(m: Machine, step: Step) -> None:
    step.keep_last_seq = True


def collection_state(m: Machine, step: Step) -> None:
    e, s = step.event, m.status
    new_state = State.from_label(e.get("state"))
    if new_state is None:
        raise BadEvent(f"unknown collection state {e.get('state')!r}")
    if _enter(m, step, new_state) and new_state == State.DONE:
        s.done_code = integer(e.get("done_code"), None)
    counts = histogram(e.get("histogram"))
    if counts:
        s.children_hist = counts


TRANSITIONS: dict[str, Transition] = {
    "Transfer": transfer,
    "Accepted": accepted,
    "Refused": refused,
    "EnQueued": enqueued,
    "DeQueued": dequeued,
    "HelperCall": helper,
    "HelperReturn": helper,
    "Running": running,
    "ReallyRunning": really_running,
    "Suspend": suspend,
    "Resume": suspend,
    "Resubmission": resubmission,
    "Done": done,
    "Cancel": cancel,
    "Abort": abort,
    "Clear": clear,
    "Match": match,
    "Pending": pending,
    "RegJob": regjob,
    "UserTag": user_tag,
    "ChangeACL": keep_seq,
    "GrantPayloadOwnership": keep_seq,
    "TakePayloadOwnership": keep_seq,
    "CollectionState": collection_state,
}
