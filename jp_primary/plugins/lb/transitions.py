"""Per-event-type transitions of the gLite state machine (§6.4 of the reference).

Each handler receives the judged ``Step``; it changes the major state only when the step is
usable (not late) and updates data fields in any case, as the non-strict original did.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from jp_primary.plugins.lb.status import DoneCode, State

if TYPE_CHECKING:
    from jp_primary.plugins.lb.statemachine import StateMachine, Step

_LRMS_STATES = (State.RUNNING, State.DONE)
_CLEAR_REASONS = {
    "USER": "user retrieved output sandbox",
    "TIMEOUT": "timed out, resource purge forced",
    "NOOUTPUT": "no output was generated",
}


def handlers(m: StateMachine) -> dict[str, Callable[[Step], None]]:  # noqa: C901
    from jp_primary.plugins.lb.statemachine import (
        BADBRANCH,
        GOODBRANCH,
        IGNORE,
        LATE,
        OK,
        TOOOLD,
        BadEvent,
        done_code_of,
        parsable_seqcode,
    )

    s = m.status

    def transfer(step: Step) -> None:
        e, result = step.event, (step.event.get("result") or "").upper()
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
        if step.usable and new_state is not None:
            s.state = new_state
            s.reason = e.get("reason")
            if result == "OK":
                s.location = m.location(
                    e.get("destination"), e.get("dest_host"), e.get("dest_instance")
                )
            else:
                s.location = m.location(e.source, e.host, e.src_instance)
        job = e.get("job")
        if e.source == "UserInterface":
            s.jdl = s.jdl if s.jdl is not None else job
        elif e.source == "JobController":
            s.condor_jdl = job
        elif e.source == "LogMonitor":
            s.rsl = job
        else:
            raise BadEvent(f"Transfer from {e.source}")

    def accepted(step: Step) -> None:
        e = step.event
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
        if step.usable:
            s.state = new_state
            s.location = m.location(e.source, e.host, e.src_instance)
        if e.source == "NetworkServer":
            s.ui_host = e.get("from_host")
        elif e.source == "LogMonitor":
            s.condor_id = e.get("local_jobid")
        else:
            s.globus_id = e.get("local_jobid")

    def refused(step: Step) -> None:
        e = step.event
        targets = {
            "NetworkServer": State.SUBMITTED,
            "LogMonitor": State.READY,
            "LRMS": State.READY,
        }
        if e.source not in targets:
            raise BadEvent(f"Refused from {e.source}")
        if step.usable:
            s.state = targets[e.source]
            s.reason = e.get("reason")
            s.location = m.location(e.get("from"), e.get("from_host"), e.get("from_instance"))

    def enqueued(step: Step) -> None:
        e, result = step.event, (step.event.get("result") or "").upper()
        new_state: State | None = None
        if result == "OK":
            if e.source == "NetworkServer" or e.source == "LogMonitor":
                new_state = State.WAITING
            elif e.source == "WorkloadManager":
                if step.old_state in _LRMS_STATES:
                    step.res = LATE
                m.update_branch(e.seq, jdl=e.get("job"))
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
        if step.usable and new_state is not None:
            s.state = new_state
            s.reason = e.get("reason")
            if result == "OK":
                s.location = m.location(e.get("queue"), e.host, e.src_instance)
                if e.source == "LogMonitor":
                    s.resubmitted = True
            else:
                s.location = m.location(e.source, e.host, e.src_instance)
        if e.source == "NetworkServer":
            if s.jdl is None or result == "OK":
                s.jdl = e.get("job")
        elif e.source == "WorkloadManager":
            s.matched_jdl = e.get("job")
        elif e.source != "LogMonitor":
            raise BadEvent(f"EnQueued from {e.source}")

    def dequeued(step: Step) -> None:
        e = step.event
        if e.source == "WorkloadManager":
            new_state = State.WAITING
        elif e.source == "JobController":
            if step.old_state in _LRMS_STATES:
                step.res = LATE
            new_state = State.READY
        else:
            raise BadEvent(f"DeQueued from {e.source}")
        if step.usable:
            s.state = new_state
            s.location = m.location(e.source, e.host, e.src_instance)

    def helper(step: Step) -> None:
        if step.usable:
            s.state = State.WAITING
            s.location = m.location(step.event.get("helper_name"), step.event.host, None)

    def running(step: Step) -> None:
        node = step.event.get("node")
        if step.usable:
            s.state = State.RUNNING
            s.jw_status = "WRAPPER_RUNNING"
            s.location = m.location("LRMS", "worknode", node)
        if step.usable_branch:
            s.ce_node = node
        if node is not None:
            m.update_branch(step.event.seq, ce_node=node)
            s.possible_ce_nodes.append(node)

    def really_running(step: Step) -> None:
        e, book = step.event, m.book
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
        on_tagged_branch = (
            tag is not None and book.last_seq is not None and book.last_seq[2] == tag[2]
        )
        if step.res == LATE and book.last_branch_seq is None and on_tagged_branch:
            # Best effort: if the job is on that branch, what was processed so far counts.
            book.last_branch_seq = book.last_seq
        s.jw_status = "PAYLOAD_RUNNING"
        s.payload_running = True
        m.load_branch()

    def suspend(step: Step) -> None:
        if step.usable and s.state == State.RUNNING:
            s.suspended = step.event.type == "Suspend"
            s.suspend_reason = step.event.get("reason")

    def resubmission(step: Step) -> None:
        e, result = step.event, (step.event.get("result") or "").upper()
        if step.usable and result == "WONTRESUB":
            s.reason = e.get("reason")
        if result == "WONTRESUB":
            m.book.resubmit_type = "WONTRESUB"
        elif result == "WILLRESUB" and e.source == "WorkloadManager":
            m.reset_branches(e)
        elif result == "SHALLOW":
            m.book.resubmit_type = "SHALLOW"

    def done(step: Step) -> None:
        e = step.event
        if e.source == "LRMS":
            # The JobWrapper's Done does not make the job Done (only the LM/JC one does).
            if step.usable:
                s.jw_status, s.payload_running = "DONE", False
            return
        code = done_code_of(e.get("status_code"))
        reason = e.get("reason")
        if step.usable:
            s.state, s.jw_status, s.reason = State.DONE, "DONE", reason
            if step.fine == GOODBRANCH:
                s.payload_running = False
            if code == DoneCode.CANCELLED:
                s.state = State.CANCELLED
            if code == DoneCode.FAILED:
                _append_failure(f"{reason or '(null)'} [{s.destination or '(null)'}]")
                s.location = m.location(e.source, e.host, e.src_instance)
            else:
                s.location = "none"
        if code == DoneCode.OK:
            s.exit_code = _exit_code(e.get("exit_code"))
        elif code == DoneCode.FAILED and not step.usable:
            _append_failure(f"{reason or '(null)'} [delayed event, destination unreliable]")
        if code != DoneCode.OK:
            s.exit_code = 0
        s.done_code = code

    def _append_failure(text: str) -> None:
        s.failure_reasons = f"{s.failure_reasons}\n{text}" if s.failure_reasons else text

    def cancel(step: Step) -> None:
        e, book = step.event, m.book
        if step.fine == BADBRANCH or (book.last_cancel_seq and e.seq < book.last_cancel_seq):
            step.res = LATE
        code = (e.get("status_code") or "").upper()
        if step.usable:
            if code == "REQ":
                s.cancelling = True
            elif code in ("DONE", "ABORT"):
                if code == "DONE":
                    s.state, s.remove_from_proxy = State.CANCELLED, True
                    s.reason, s.location = e.get("reason"), "none"
                    book.last_seq = e.seq
                s.cancelling = False
        s.cancel_reason = e.get("reason")

    def abort(step: Step) -> None:
        e = step.event
        if e.source == "WorkloadManager":
            step.res = OK  # the WM's Abort is always accepted
        if step.usable:
            s.state, s.remove_from_proxy = State.ABORTED, True
            s.reason, s.location = e.get("reason"), "none"
            m.reset_branches(e)

    def clear(step: Step) -> None:
        reason = (step.event.get("reason") or "").upper()
        if reason not in _CLEAR_REASONS:
            raise BadEvent(f"unexpected Clear reason {reason!r}")
        if step.usable:
            s.state, s.remove_from_proxy = State.CLEARED, True
            s.location, s.reason = "none", _CLEAR_REASONS[reason]
        s.sandbox_retrieved = reason

    def match(step: Step) -> None:
        e, dest = step.event, step.event.get("dest_id")
        if step.usable:
            s.state = State.WAITING
            s.location = m.location("WorkloadManager", e.host, e.src_instance)
        if step.usable_branch:
            s.destination = dest
        if dest is not None:
            m.update_branch(e.seq, destination=dest)
            s.possible_destinations.append(dest)

    def pending(step: Step) -> None:
        if step.usable:
            s.state, s.reason = State.WAITING, step.event.get("reason")
            s.location = m.location("WorkloadManager", step.event.host, step.event.src_instance)

    def regjob(step: Step) -> None:
        e = step.event
        if step.usable:
            s.state = State.SUBMITTED
        s.jdl = e.get("jdl") or s.jdl
        s.parent_job = e.get("parent")
        s.network_server = e.get("ns")
        s.children_num = _int(e.get("nsubjobs"), 0) or 0
        if (e.get("jobtype") or "").upper() in ("DAG", "PARTITIONED", "COLLECTION"):
            s.children_hist = {State.UNKNOWN: s.children_num}
        s.seed = e.get("seed")

    def user_tag(step: Step) -> None:
        name, value = step.event.get("name"), step.event.get("value")
        if name is None or value is None:
            raise BadEvent("UserTag without a name or value")
        m.add_tag(name, value, step.event.seq)

    def keep_seq(step: Step) -> None:
        step.keep_last_seq = True

    def collection_state(step: Step) -> None:
        e = step.event
        new_state = State.from_label(e.get("state"))
        if new_state is None:
            raise BadEvent(f"unknown collection state {e.get('state')!r}")
        if step.usable:
            s.state = new_state
            if new_state == State.DONE:
                s.done_code = _int(e.get("done_code"), None)
        histogram = _histogram(e.get("histogram"))
        if histogram:
            s.children_hist = histogram

    return {
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


def _int(text: str | None, default: int | None) -> int | None:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _exit_code(text: str | None) -> int:
    value = _int(text, -1)
    return -1 if value is None else value


def _histogram(text: str | None) -> dict[State, int]:
    """``"Submitted=0, Waiting=0, ..."`` (the CollectionState histogram) to counts."""
    counts: dict[State, int] = {}
    for item in (text or "").split(","):
        name, _, count = item.strip().partition("=")
        state = State.from_label(name)
        if state is not None and count.strip().isdigit():
            counts[state] = int(count)
    return counts
