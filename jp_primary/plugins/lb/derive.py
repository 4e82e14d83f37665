"""JP attribute values derived from a replay, in the namespaces and formats of the original.

``derive_attributes`` is pure: a ``Replay`` in, ``DerivedValue``s and problems out. Where the v1
and v2 L&B attribute sets name the same thing with names equal up to case (``jobId``,
``jobType``/``jobtype``, ``JDL``/``jdl``), one value is emitted under the v1 spelling, as the
original resolved names case-insensitively with v1 first.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from jp_primary.attributes.names import JP_PRIMARY, LB_ATTRIBUTES, LB_JDL, LB_TAG
from jp_primary.plugins.base import DerivedValue, ExtractionProblem
from jp_primary.plugins.lb.consistency import find_inconsistency
from jp_primary.plugins.lb.events import Event
from jp_primary.plugins.lb.history import final_entry, full_history_xml, last_history_xml
from jp_primary.plugins.lb.jobids import subjob_ids
from jp_primary.plugins.lb.statemachine import Replay
from jp_primary.plugins.lb.status import DoneCode, JobStatus, State
from jp_primary.timefmt import from_micros, micros_text

INCONSISTENCY = f"{JP_PRIMARY}:replayInconsistency"
_JDL_ALIASES = {"VO": "VirtualOrganisation", "eNodes": "max_nodes_running", "eProc": "NodeNumber"}

ClassAdParser = Callable[[str], list[tuple[str, str]]]


def derive_attributes(
    result: Replay, classad_values: ClassAdParser | None = None
) -> tuple[list[DerivedValue], list[ExtractionProblem]]:
    """All attribute values of one job's replay; ``classad_values`` parses the RegJob JDL."""
    status = result.status
    if status.state == State.UNDEFINED:
        return [], [ExtractionProblem("no job information: the dump has no registered job")]
    out = _Collector(status.last_update_time_us or result.events[-1].time_us)
    _status_values(out, status)
    _history_values(out, result)
    _structure_values(out, status)
    _event_values(out, result.events, status)
    problems = _jdl_values(out, result.events, classad_values)
    inconsistency = find_inconsistency(result)
    if inconsistency is not None:
        out.values.append(
            DerivedValue(INCONSISTENCY, inconsistency.value, from_micros(inconsistency.time_us))
        )
    return out.values, problems


class _Collector:
    def __init__(self, default_time_us: int) -> None:
        self.values: list[DerivedValue] = []
        self.default_time_us = default_time_us
        self._stamps: dict[int, datetime] = {}  # most values share a few timestamps

    def add(self, local: str, value: str | None, time_us: int | None = None, ns: str = "") -> None:
        if value is None:
            return
        when = self.default_time_us if time_us is None else time_us
        stamp = self._stamps.get(when)
        if stamp is None:
            stamp = self._stamps[when] = from_micros(when)
        self.values.append(DerivedValue(f"{ns or LB_ATTRIBUTES}:{local}", value, stamp))

    def add_all(self, names: tuple[str, ...], value: str | None) -> None:
        for name in names:
            self.add(name, value)


def _flag(value: bool) -> str:
    return "1" if value else "0"


def _status_values(out: _Collector, s: JobStatus) -> None:
    out.add("status", s.state.label)
    out.add("jobId", s.jobid)
    out.add_all(("owner", "user"), s.owner)
    out.add("jobType", s.jobtype or "UNKNOWN")
    out.add("seed", s.seed)
    out.add("JDL", s.jdl)
    out.add("matchedJdl", s.matched_jdl)
    out.add("condorJdl", s.condor_jdl)
    out.add("rsl", s.rsl)
    out.add_all(("destination", "CE"), s.destination)
    out.add_all(("ceNode", "host"), s.ce_node)
    out.add_all(("networkServer", "RB"), s.network_server)
    out.add("condorId", s.condor_id)
    out.add("globusId", s.globus_id)
    out.add("reason", s.reason)
    out.add("location", s.location)
    out.add("exitCode", None if s.exit_code is None else str(s.exit_code))
    out.add_all(("resubmitted", "retryCount"), _flag(s.resubmitted))
    out.add("cancelling", _flag(s.cancelling))
    out.add("cancelReason", s.cancel_reason)
    if s.cpu_time:
        out.add_all(("cpuTime", "CPUTime"), str(s.cpu_time))
    out.add("payloadRunning", _flag(s.payload_running))
    out.add("suspended", _flag(s.suspended))
    out.add("suspendReason", s.suspend_reason)
    out.add("failureReasons", s.failure_reasons)
    out.add("removeFromProxy", _flag(s.remove_from_proxy))
    if s.state_enter_time_us is not None:
        out.add("stateEnterTime", micros_text(s.state_enter_time_us))
    if s.last_update_time_us is not None:
        out.add("lastUpdateTime", micros_text(s.last_update_time_us))
    items = [
        f'<item name="{state.label}">{micros_text(time_us)}</item>'
        for state, time_us in sorted(s.state_enter_times.items())
    ]
    out.add("stateEnterTimes", "\n".join(items) or None)
    out.add("possibleDestinations", _items(s.possible_destinations))
    out.add("possibleCeNodes", _items(s.possible_ce_nodes))
    tags = [
        f"<tag><name>{_text(name)}</name><value>{_text(value)}</value></tag>"
        for name, value, _seq in s.user_tags.values()
    ]
    out.add("userTags", "\n".join(tags) or None)


def _history_values(out: _Collector, result: Replay) -> None:
    s, final = result.status, final_entry(result.history)
    if not result.history or final is None:
        return
    out.add("fullStatusHistory", full_history_xml(result.history))
    out.add("lastStatusHistory", last_history_xml(result.history))
    out.add("finalStatus", final.state.label, final.time_us)
    out.add("finalStatusDate", micros_text(final.time_us), final.time_us)
    if final.reason is not None:
        out.add("finalStatusReason", final.reason, final.time_us)
    else:
        out.add("finalStatusReason", s.reason)
    if final.state == State.DONE and s.done_code is not None:
        for name in ("doneCode", "finalDoneStatus"):
            out.add(name, DoneCode(s.done_code).name, final.time_us)


def _structure_values(out: _Collector, s: JobStatus) -> None:
    out.add_all(("parentJob", "parent"), s.parent_job)
    out.add_all(("childrenNum", "nsubjobs"), str(s.children_num))
    if s.children_num > 0 and s.jobid is not None:
        children = subjob_ids(s.jobid, s.children_num, s.seed)
        out.add_all(("children", "subjobs"), "\n".join(f"<jobId>{c}</jobId>" for c in children))
    if s.children_hist:
        items = [
            f'<item name="{state.label}">{s.children_hist.get(state, 0)}</item>'
            for state in State
            if state != State.UNDEFINED
        ]
        out.add("childrenHist", "\n".join(items))


def _event_values(out: _Collector, events: list[Event], s: JobStatus) -> None:
    """Values read from single events rather than from the status."""
    registrations = [e for e in events if e.type == "RegJob"]
    if registrations:
        out.add("UIHost", registrations[0].host, registrations[0].time_us)
    lrms_done = [e for e in events if e.type == "Done" and e.source == "LRMS"]
    if lrms_done:
        last = lrms_done[-1]
        out.add("LRMSDoneStatus", (last.get("status_code") or "").upper(), last.time_us)
        out.add("LRMSStatusReason", last.get("reason"), last.time_us)
    elif s.done_code is not None:
        out.add("LRMSDoneStatus", DoneCode(s.done_code).name)
    spelling: dict[str, str] = {}  # tag names match case-insensitively: first spelling wins
    for event in events:
        if event.type != "UserTag":
            continue
        name, value = event.get("name"), event.get("value")
        if name and value is not None and ":" not in name:
            name = spelling.setdefault(name.lower(), name)
            out.add(name, value, event.time_us, ns=LB_TAG)


def _jdl_values(
    out: _Collector, events: list[Event], classad_values: ClassAdParser | None
) -> list[ExtractionProblem]:
    with_jdl = [e for e in events if e.type == "RegJob" and e.get("jdl")]
    if not with_jdl or classad_values is None:
        return []
    registration = with_jdl[-1]
    try:
        pairs = classad_values(registration.get("jdl") or "")
    except ValueError as exc:
        message = f"the RegJob JDL is not a ClassAd, no JDL attributes: {exc}"
        return [ExtractionProblem(message, registration.line)]
    by_lower = {name.lower(): value for name, value in pairs}
    for name, value in pairs:
        out.add(name, value, registration.time_us, ns=LB_JDL)
    for v1_name, jdl_name in _JDL_ALIASES.items():
        out.add(v1_name, by_lower.get(jdl_name.lower()), registration.time_us)
    return []


def _items(values: list[str]) -> str | None:
    return "\n".join(f"<item>{_text(v)}</item>" for v in values) or None


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
