"""Reading an HTCondor user log from a local path (the only part of the plugin that does I/O).

``htcondor2.JobEventLog`` needs a file path. ``read_log`` hands over each event as a pure
``CondorEvent`` (fields copied only for the event types anything uses, as copying is most of a
read's cost); ``check_log`` reads the raw lines once more, in bounded memory, because the
HTCondor reader stops silently at damage: it counts the event headers and notices times written
without a year.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import htcondor2
from htcondor2 import JobEventType as Ev

from jp_primary.plugins.condor.mapper import CondorEvent
from jp_primary.plugins.condor.times import event_time_us
from jp_primary.plugins.lines import bounded_lines

# The first line of each event in the classic text format: "005 (1234.000.000) <date> ...".
_EVENT_HEADER = re.compile(rb"^\d{3} \(\d+\.\d+\.\d+\) ")
# The old header date "MM/DD hh:mm:ss" has no year: the reader assumes the current one.
_NO_YEAR = re.compile(rb"^\d{3} \(\d+\.\d+\.\d+\) \d\d/\d\d ")
_HEADER_LINE_BYTES = 64 * 1024
_NO_FIELDS: dict[str, object] = {}  # shared by the events whose fields nothing reads (not changed)
# The fields the summary and the mapper read, per event type: fetched one by one, as copying a
# whole event (``items()``) costs more than reading it.
_KEYS: dict[int, tuple[str, ...]] = {
    int(Ev.SUBMIT): ("SubmitHost",),
    int(Ev.EXECUTE): ("ExecuteHost", "SlotName"),
    int(Ev.JOB_TERMINATED): ("TerminatedNormally", "ReturnValue", "TerminatedBySignal"),
    int(Ev.JOB_EVICTED): (
        "TerminatedAndRequeued",
        "TerminatedNormally",
        "ReturnValue",
        "TerminatedBySignal",
    ),
    int(Ev.JOB_ABORTED): ("Reason",),
    int(Ev.JOB_HELD): ("HoldReason", "HoldReasonCode", "HoldReasonSubCode"),
    int(Ev.JOB_RELEASED): ("Reason",),
    int(Ev.SHADOW_EXCEPTION): ("Message",),
    int(Ev.JOB_RECONNECTED): ("StartdAddr", "StartdName"),
    int(Ev.JOB_RECONNECT_FAILED): ("Reason", "StartdName"),
    int(Ev.GRID_SUBMIT): ("GridResource", "GridJobId"),
    int(Ev.GLOBUS_SUBMIT): ("RMContact", "JMContact"),
    int(Ev.GLOBUS_SUBMIT_FAILED): ("Reason",),
}


@dataclass
class ReadOutcome:
    read: int = 0  # events handed over
    error: str | None = None  # why the HTCondor reader stopped early, if it raised


def read_log(path: Path, outcome: ReadOutcome) -> Iterator[CondorEvent]:
    """Every event in the log (without waiting for more to be appended), in log order."""
    log = htcondor2.JobEventLog(str(path))
    keys = _KEYS
    read = 0
    try:
        # Subscripts, not the ``type``/``cluster``/``proc`` properties and ``get``: each layer
        # of Python between here and the ClassAd costs as much as the lookup itself.
        for event in log.events(stop_after=0):
            kind = event["EventTypeNumber"]
            wanted = keys.get(kind)
            fields = _NO_FIELDS
            if wanted is not None:
                fields = {}
                for key in wanted:
                    try:  # noqa: SIM105  (contextlib.suppress costs a call per field)
                        fields[key] = event[key]
                    except KeyError:
                        pass  # absent (e.g. no ReturnValue after a signal)
            try:
                proc = event["Proc"]
            except KeyError:
                proc = -1  # not written for cluster-level events
            read += 1
            yield CondorEvent(
                event["Cluster"], proc, kind, event_time_us(event["EventTime"]), fields
            )
    except Exception as exc:  # the C++ reader's errors carry no stable type
        outcome.error = str(exc) or type(exc).__name__
    finally:
        outcome.read = read
        log.close()


@dataclass(frozen=True)
class LogCheck:
    headers: int  # event header lines in the file
    without_year: int  # of which dated "MM/DD" (no year)
    empty: bool


def check_log(path: Path) -> LogCheck:
    headers = without_year = 0
    with path.open("rb") as stream:
        for line in bounded_lines(stream, _HEADER_LINE_BYTES):
            if line is not None and _EVENT_HEADER.match(line):
                headers += 1
                without_year += _NO_YEAR.match(line) is not None
    return LogCheck(headers, without_year, path.stat().st_size == 0)
