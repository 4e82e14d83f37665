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

from jp_primary.plugins.condor.mapper import MAPPED_TYPES, CondorEvent
from jp_primary.plugins.condor.summary import DESCRIBED_TYPES
from jp_primary.plugins.lines import bounded_lines

# The first line of each event in the classic text format: "005 (1234.000.000) <date> ...".
_EVENT_HEADER = re.compile(rb"^\d{3} \(\d+\.\d+\.\d+\) ")
# The old header date "MM/DD hh:mm:ss" has no year: the reader assumes the current one.
_NO_YEAR = re.compile(rb"^\d{3} \(\d+\.\d+\.\d+\) \d\d/\d\d ")
_HEADER_LINE_BYTES = 64 * 1024
_WITH_FIELDS = MAPPED_TYPES | DESCRIBED_TYPES


@dataclass
class ReadOutcome:
    read: int = 0  # events handed over
    error: str | None = None  # why the HTCondor reader stopped early, if it raised


def read_log(path: Path, outcome: ReadOutcome) -> Iterator[CondorEvent]:
    """Every event in the log (without waiting for more to be appended), in log order."""
    log = htcondor2.JobEventLog(str(path))
    wanted = _WITH_FIELDS
    try:
        for event in log.events(stop_after=0):
            kind = int(event.type)
            fields = dict(event.items()) if kind in wanted else {}
            outcome.read += 1
            yield CondorEvent(event.cluster, event.proc, kind, event.timestamp * 1_000_000, fields)
    except Exception as exc:  # the C++ reader's errors carry no stable type
        outcome.error = str(exc) or type(exc).__name__
    finally:
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
