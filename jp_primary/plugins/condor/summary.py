"""What one HTCondor job's user-log events add up to (pure: events in, attribute values out).

Statuses use HTCondor's own ``JobStatus`` names: ``Idle``, ``Running``, ``Suspended``, ``Held``,
``Completed`` (terminated, normally or not), ``Removed`` (aborted). Times are ISO 8601 UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import parse_qsl

from htcondor2 import JobEventType as Ev

from jp_primary.timefmt import rfc3339_seconds

_STATUS_AFTER: dict[int, str] = {
    Ev.SUBMIT: "Idle",
    Ev.EXECUTE: "Running",
    Ev.JOB_EVICTED: "Idle",
    Ev.SHADOW_EXCEPTION: "Idle",
    Ev.JOB_RECONNECT_FAILED: "Idle",
    Ev.JOB_TERMINATED: "Completed",
    Ev.JOB_ABORTED: "Removed",
    Ev.JOB_HELD: "Held",
    Ev.JOB_RELEASED: "Idle",
    Ev.JOB_SUSPENDED: "Suspended",
    Ev.JOB_UNSUSPENDED: "Running",
}

Value = tuple[str, str, datetime]  # (local name, value, timestamp)


@dataclass(slots=True)
class JobSummary:
    cluster: int
    proc: int
    event_count: int = 0
    first_us: int | None = None  # times in microseconds: a datetime per event costs too much
    last_us: int | None = None
    status: tuple[str, int] | None = None
    # The events the values describe, described only when the values are asked for.
    described: list[tuple[int, int, Mapping[str, object]]] = field(default_factory=list)

    @property
    def first_time(self) -> datetime | None:
        return None if self.first_us is None else _when(self.first_us)

    @property
    def job_id(self) -> str:
        return f"{self.cluster}.{self.proc}"

    def add(
        self, event_type: int, time_us: int, fields: Mapping[str, object], describe: bool = True
    ) -> bool:
        """Account for one event of this job (events arrive in log order); say whether it is
        kept to be described (``describe`` False: counted only, the caller's memory bound)."""
        self.event_count += 1
        if self.first_us is None:
            self.first_us = time_us
        self.last_us = time_us
        status = _STATUS_AFTER.get(event_type)
        if status is not None:
            self.status = (status, time_us)
        if event_type in _DESCRIBERS and describe:
            self.described.append((event_type, time_us, fields))
            return True
        return False

    @property
    def found(self) -> list[Value]:
        found: list[Value] = []
        for event_type, time_us, fields in self.described:
            when = _when(time_us)
            found.extend(
                (name, value, when) for name, value in _DESCRIBERS[event_type](fields, when)
            )
        return found

    def values(self, fallback_time: datetime) -> list[Value]:
        first = self.first_time or fallback_time
        last = fallback_time if self.last_us is None else _when(self.last_us)
        values: list[Value] = [
            ("jobId", self.job_id, first),
            ("cluster", str(self.cluster), first),
            ("proc", str(self.proc), first),
            *self.found,
            ("eventCount", str(self.event_count), last),
        ]
        if self.status is not None:
            status, when = self.status[0], _when(self.status[1])
            values += [
                ("finalStatus", status, when),
                ("finalStatusTime", rfc3339_seconds(when), when),
            ]
        return values


def _when(time_us: int) -> datetime:
    return datetime.fromtimestamp(time_us / 1_000_000, UTC)


def _submit(fields: Mapping[str, object], when: datetime) -> list[tuple[str, str]]:
    address = str(fields.get("SubmitHost", ""))
    found = [("submitTime", rfc3339_seconds(when))]
    if address:
        found += [("submitHost", host_of(address)), ("submitAddress", address)]
    return found


def _execute(fields: Mapping[str, object], when: datetime) -> list[tuple[str, str]]:
    address = str(fields.get("ExecuteHost", ""))
    found = [("executeTime", rfc3339_seconds(when))]
    if address:
        found += [("executeHost", host_of(address)), ("executeAddress", address)]
    if "SlotName" in fields:
        found.append(("slotName", str(fields["SlotName"])))
    return found


def _terminated(fields: Mapping[str, object], when: datetime) -> list[tuple[str, str]]:
    normally = bool(fields.get("TerminatedNormally", False))
    found = [
        ("terminateTime", rfc3339_seconds(when)),
        ("terminatedNormally", "true" if normally else "false"),
    ]
    if normally and "ReturnValue" in fields:
        found.append(("returnValue", str(fields["ReturnValue"])))
    if not normally and "TerminatedBySignal" in fields:
        found.append(("terminatedBySignal", str(fields["TerminatedBySignal"])))
    return found


def _aborted(fields: Mapping[str, object], when: datetime) -> list[tuple[str, str]]:
    return [("abortTime", rfc3339_seconds(when)), ("abortReason", str(fields.get("Reason", "")))]


def _held(fields: Mapping[str, object], when: datetime) -> list[tuple[str, str]]:
    found = [("holdTime", rfc3339_seconds(when)), ("holdReason", str(fields.get("HoldReason", "")))]
    for key, name in (("HoldReasonCode", "holdReasonCode"), ("HoldReasonSubCode", "holdSubCode")):
        if key in fields:
            found.append((name, str(fields[key])))
    return found


_DESCRIBERS = {
    Ev.SUBMIT: _submit,
    Ev.EXECUTE: _execute,
    Ev.JOB_TERMINATED: _terminated,
    Ev.JOB_ABORTED: _aborted,
    Ev.JOB_HELD: _held,
}


@lru_cache(maxsize=4096)  # a log names few hosts, many times
def host_of(sinful: str) -> str:
    """The host of an HTCondor "sinful" address: its ``alias`` if given, else its IP.

    ``<192.168.1.20:9618?addrs=...&alias=worker1.example.org>`` -> ``worker1.example.org``.
    """
    inner = sinful.strip().removeprefix("<").removesuffix(">")
    address, _, query = inner.partition("?")
    alias = dict(parse_qsl(query, keep_blank_values=True)).get("alias")
    if alias:
        return alias
    host = address.rpartition(":")[0] if address.count(":") == 1 or "]" in address else address
    return host.strip("[]") or address


# The event types whose fields the summary reads.
DESCRIBED_TYPES = frozenset(int(t) for t in _DESCRIBERS)
