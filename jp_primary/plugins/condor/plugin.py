"""The ``condor-log`` class: an HTCondor job event ("user") log, read by ``htcondor2``.

The log is summarised into ``http://jp-primary/Schema/Condor:<name>`` values (the table is in
docs/plugins.md): the job id, where it was submitted and executed, how it ended, when, and how many
events the log holds. A log normally belongs to one job; events of other jobs in the same file are
reported as a problem and left out. Lines the HTCondor reader cannot parse stop it; the plugin
notices (it counts the event headers itself) and reports the log as truncated or corrupt, keeping
what was read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import htcondor2

from jp_primary.attributes.names import CONDOR_LOG
from jp_primary.plugins.base import DerivedValue, ExtractContext, Extraction, ExtractionProblem
from jp_primary.plugins.condor.summary import JobSummary
from jp_primary.plugins.lines import bounded_lines

# The first line of each event in the classic text format: "005 (1234.000.000) <date> ...".
_EVENT_HEADER = re.compile(rb"^\d{3} \(\d+\.\d+\.\d+\) ")
_JOB_ID = re.compile(r"\d+\.\d+")
# Memory bounds whatever the log holds: events summarised, other jobs named, line bytes read.
MAX_EVENTS = 100_000
_OTHERS_NAMED = 10
_HEADER_LINE_BYTES = 64 * 1024


class CondorLogPlugin:
    name: ClassVar[str] = "condor-log"
    classes: ClassVar[tuple[str, ...]] = ("condor-log",)
    aliases: ClassVar[dict[str, str]] = {}
    namespaces: ClassVar[tuple[str, ...]] = (CONDOR_LOG,)
    # The types of what summary.py writes; hosts, addresses, reasons and statuses are strings.
    attribute_types: ClassVar[dict[str, str]] = {
        "condor:cluster": "integer",
        "condor:proc": "integer",
        "condor:eventCount": "integer",
        "condor:returnValue": "integer",
        "condor:terminatedBySignal": "integer",
        "condor:holdReasonCode": "integer",
        "condor:holdSubCode": "integer",
        "condor:terminatedNormally": "boolean",
        "condor:submitTime": "timestamp",
        "condor:executeTime": "timestamp",
        "condor:terminateTime": "timestamp",
        "condor:abortTime": "timestamp",
        "condor:holdTime": "timestamp",
        "condor:finalStatusTime": "timestamp",
    }

    def extract(self, path: Path, context: ExtractContext) -> Extraction:
        extraction = Extraction()
        summary: JobSummary | None = None
        others: set[str] = set()
        read = other_events = 0
        stopped = False  # at MAX_EVENTS, on purpose: the completeness check does not apply
        try:
            for event in _events(path):
                read += 1
                job = f"{event.cluster}.{event.proc}"
                if event.proc < 0:  # cluster-level bookkeeping (late materialization)
                    continue
                if summary is None:
                    summary = JobSummary(cluster=event.cluster, proc=event.proc)
                if job != summary.job_id:
                    other_events += 1
                    if len(others) < _OTHERS_NAMED:
                        others.add(job)
                    continue
                if summary.event_count >= MAX_EVENTS:
                    message = f"the log holds more than {MAX_EVENTS} events; the rest is not read"
                    extraction.errors.append(ExtractionProblem(message))
                    stopped = True
                    break
                summary.add(int(event.type), _event_time(event.timestamp), dict(event.items()))
        except Exception as exc:  # the C++ reader's errors carry no stable type
            extraction.errors.append(ExtractionProblem(f"cannot read the user log: {exc}"))
        if not stopped:
            _check_completeness(path, read, extraction)
        if others:
            listed = ", ".join(sorted(others, key=_job_sort_key))
            message = (
                f"the log also has {other_events} event(s) of other jobs ({listed}"
                f"{', ...' if other_events > len(others) else ''}); they were left out"
            )
            extraction.errors.append(ExtractionProblem(message))
        if summary is not None:
            extraction.values.extend(_values(summary, context))
        return extraction


def _events(path: Path) -> Iterator[Any]:
    """Every event in the log, without waiting for more to be appended."""
    log = htcondor2.JobEventLog(str(path))
    try:
        yield from log.events(stop_after=0)
    finally:
        log.close()


def _check_completeness(path: Path, read: int, out: Extraction) -> None:
    headers = 0
    with path.open("rb") as stream:
        for line in bounded_lines(stream, _HEADER_LINE_BYTES):
            headers += line is not None and bool(_EVENT_HEADER.match(line))
    if headers > read:
        missing = headers - read
        message = f"{missing} of {headers} events could not be read (truncated or corrupt log)"
        out.errors.append(ExtractionProblem(message))
    elif read == 0 and not out.errors:
        empty = path.stat().st_size == 0
        message = "the user log is empty" if empty else "no HTCondor user-log events found"
        out.errors.append(ExtractionProblem(message))


def _values(summary: JobSummary, context: ExtractContext) -> list[DerivedValue]:
    return [
        DerivedValue(name=f"{CONDOR_LOG}:{local}", value=value, timestamp=when)
        for local, value, when in summary.values(fallback_time=context.committed_at)
    ]


def _event_time(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _job_sort_key(job: str) -> tuple[int, int]:
    cluster, _, proc = job.partition(".")
    return (int(cluster), int(proc)) if _JOB_ID.fullmatch(job) else (0, 0)
