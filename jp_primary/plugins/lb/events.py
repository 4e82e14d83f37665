"""Typed gLite L&B events built from parsed ULM fields.

Every event type of the gLite job family is known with its required and optional fields; other
families (PBS, Condor, CREAM, ...) are accepted with whatever fields they carry and are ignored by
the gLite state machine. Field values ``""`` and ``(nil)`` both mean NULL.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from functools import lru_cache

from jp_primary.plugins.lb.seqcode import (
    SeqCode,
    SeqCodeError,
    parse_condor_seqcode,
    parse_seqcode,
)
from jp_primary.plugins.lb.ulm import ULMError

_GLITE_EVENTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # name: (required fields, optional fields)
    "Transfer": (
        ("destination", "dest_host", "job", "result"),
        ("dest_instance", "reason", "dest_jobid"),
    ),
    "Accepted": (("from", "from_host"), ("from_instance", "local_jobid")),
    "Refused": (("from", "from_host"), ("from_instance", "reason")),
    "EnQueued": (("queue", "result"), ("job", "reason")),
    "DeQueued": (("queue",), ("local_jobid",)),
    "HelperCall": (("helper_name", "src_role"), ("helper_params",)),
    "HelperReturn": (("helper_name", "src_role"), ("retval",)),
    "Running": (("node",), ()),
    "Resubmission": (("result",), ("reason", "tag")),
    "Done": (("status_code",), ("reason", "exit_code")),
    "Cancel": (("status_code",), ("reason",)),
    "Abort": (("reason",), ()),
    "Clear": (("reason",), ()),
    "Purge": ((), ()),
    "Match": (("dest_id",), ()),
    "Pending": (("reason",), ()),
    "ReallyRunning": ((), ("wn_seq",)),
    "Suspend": ((), ("reason",)),
    "Resume": ((), ("reason",)),
    "RegJob": (("ns", "jobtype"), ("jdl", "parent", "nsubjobs", "seed", "wms_dn")),
    "CollectionState": (("state", "histogram", "child", "child_event"), ("done_code",)),
    "ConnectJob": (("dest_jobid", "jobtype"), ()),
    "DisconnectJob": (("dest_jobid",), ()),
    "UserTag": (("name", "value"), ()),
    "ChangeACL": (
        ("user_id", "user_id_type", "permission", "permission_type", "operation"),
        (),
    ),
    "GrantPayloadOwnership": (("payload_owner",), ()),
    "TakePayloadOwnership": ((), ()),
    "Chkpt": (("tag", "classad"), ()),
    "Listener": (("svc_name", "svc_host", "svc_port"), ()),
    "CurDescr": (("descr",), ()),
    "Notification": (
        ("notifid", "owner", "dest_host", "dest_port", "expires", "jobstat", "dest_url"),
        (),
    ),
    "ResourceUsage": (("resource", "quantity", "unit"), ()),
}
EVENT_TYPES = _GLITE_EVENTS
# Exact spellings first, then upper-cased ones (keys are case-insensitive in ULM).
_CANONICAL_TYPE = {name: name for name in _GLITE_EVENTS} | {n.upper(): n for n in _GLITE_EVENTS}

SOURCES = (
    "UserInterface",
    "NetworkServer",
    "WorkloadManager",
    "BigHelper",
    "JobController",
    "LogMonitor",
    "LRMS",
    "Application",
    "LBServer",
    "CREAMInterface",
    "CREAMExecutor",
    "PBSClient",
    "PBSServer",
    "PBSMomSuperior",
    "PBSMom",
    "PBSScheduler",
    "CloudManager",
    "VMManager",
    "VMSystem",
)
_CANONICAL_SOURCE = (
    {name: name for name in SOURCES}
    | {name.upper(): name for name in SOURCES}
    | {"WMPROXY": "NetworkServer", "WMProxy": "NetworkServer"}
)
# DG.USER is not insisted on: the perf templates of the original lack it on some lines.
_REQUIRED_COMMON = ("DATE", "HOST", "DG.PRIORITY", "DG.SOURCE", "DG.EVNT", "DG.JOBID", "DG.SEQCODE")


@dataclass(slots=True)
class Event:
    """One L&B event. ``time_us`` is the event DATE in microseconds since the epoch (UTC)."""

    type: str
    jobid: str
    seq: SeqCode
    time_us: int
    source: str
    host: str
    user: str
    src_instance: str | None
    line: int | None
    fields: dict[str, str | None] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        return self.fields.get(name)


def null(value: str | None) -> str | None:
    """``""`` and ``(nil)`` are how ULM writes NULL."""
    return None if value is None or value == "" or value == "(nil)" else value


@lru_cache(maxsize=4096)
def _day_seconds(day: str) -> int:
    """Epoch seconds of midnight UTC of ``YYYYMMDD``."""
    return calendar.timegm((int(day[0:4]), int(day[4:6]), int(day[6:8]), 0, 0, 0, 0, 0, 0))


def parse_ulm_date(text: str) -> int:
    """``YYYYMMDDhhmmss.uuuuuu`` (UTC) to microseconds since the epoch."""
    # Events come in bursts: the hour is looked up and the rest is read by one int() (int() is
    # costly): "mmss" followed by "uuuuuu" is minutes * 10**8 + microseconds within the minute.
    if len(text) == 21 and text[14] == ".":
        hour = _HOURS.get(text[:10])
        digits = text[10:14] + text[15:]
        if hour is not None and digits.isdigit():
            minutes, within_minute = divmod(int(digits), 100_000_000)
            return (hour + minutes * 60) * 1_000_000 + within_minute
    seconds, _, micros = text.partition(".")
    if len(seconds) != 14 or not seconds.isdigit() or (micros and not micros.isdigit()):
        raise ValueError(f"not a ULM date: {text[:40]!r}")
    hour = _day_seconds(seconds[:8]) + int(seconds[8:10]) * 3600
    if len(_HOURS) >= 65_536:
        _HOURS.clear()  # bounded; the hours of the current dump are learnt again
    _HOURS[seconds[:10]] = hour
    minute = hour + int(seconds[10:12]) * 60
    return (minute + int(seconds[12:14])) * 1_000_000 + int(micros.ljust(6, "0")[:6] or 0)


_HOURS: dict[str, int] = {}  # "YYYYMMDDhh" to epoch seconds


def event_from_fields(fields: dict[str, str], line: int | None = None) -> Event:
    """Build an ``Event`` from ``ulm.parse_line`` output; ``ULMError`` names what is wrong."""
    try:
        type_text, source_text = fields["DG.EVNT"], fields["DG.SOURCE"]
        jobid, host, seqcode, date = (
            fields["DG.JOBID"],
            fields["HOST"],
            fields["DG.SEQCODE"],
            fields["DATE"],
        )
        fields["DG.PRIORITY"]  # noqa: B018  (required, unused)
    except KeyError:
        missing = [key for key in _REQUIRED_COMMON if key not in fields]
        raise ULMError(f"missing required field(s): {', '.join(missing)}", line) from None
    event_type = _CANONICAL_TYPE.get(type_text) or _CANONICAL_TYPE.get(type_text.upper(), type_text)
    try:
        seq = _seqcode(seqcode, event_type)
        time_us = parse_ulm_date(date)
    except ValueError as exc:  # SeqCodeError is a ValueError
        raise ULMError(str(exc), line) from None
    source = _CANONICAL_SOURCE.get(source_text) or _CANONICAL_SOURCE.get(
        source_text.upper(), source_text
    )
    own_fields = _event_fields(event_type, fields, line)
    # Positional, in the order of the Event fields: keyword passing costs more than the rest of
    # the construction, once per line of every dump.
    return Event(
        event_type,
        jobid,
        seq,
        time_us,
        source,
        host,
        fields.get("DG.USER", ""),
        null(fields.get("DG.SRC_INSTANCE")),
        line,
        own_fields,
    )


def _seqcode(text: str, event_type: str) -> SeqCode:
    """A gLite code, else a Condor-type one (the L&B Condor job type, docs/condor.md)."""
    try:
        return parse_seqcode(text)
    except SeqCodeError:
        if not text.startswith("TIMESTAMP="):
            raise
    return parse_condor_seqcode(text, registration=event_type == "RegJob")


def _event_fields(
    event_type: str, fields: dict[str, str], line: int | None
) -> dict[str, str | None]:
    keys = _FIELD_KEYS.get(event_type)
    if keys is None:  # another family: keep whatever it carries
        prefix = f"DG.{event_type.upper()}."
        return {
            key[len(prefix) :].lower(): null(value)
            for key, value in fields.items()
            if key.startswith(prefix)
        }
    required, optional = keys
    own: dict[str, str | None] = {}
    absent = []
    # ``null`` written out: a function call per field costs as much as the rest of the loop.
    for name, key in required:
        value = fields.get(key)
        if value is None:
            absent.append(key)
        else:
            own[name] = value if value and value != "(nil)" else None
    if absent:
        raise ULMError(f"{event_type} event lacks required field(s) {', '.join(absent)}", line)
    for name, key in optional:
        value = fields.get(key)
        if value is not None:
            own[name] = value if value and value != "(nil)" else None
    return own


def _field_keys(event_type: str, names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((name, f"DG.{event_type.upper()}.{name.upper()}") for name in names)


# For each gLite type: ((field name, ULM key), ...) for the required and the optional fields.
_FIELD_KEYS = {
    event_type: (_field_keys(event_type, required), _field_keys(event_type, optional))
    for event_type, (required, optional) in _GLITE_EVENTS.items()
}
