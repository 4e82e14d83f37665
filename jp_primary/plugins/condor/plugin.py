"""The ``condor-log`` class: an HTCondor job event ("user") log, read by ``htcondor2``.

Each job of the log (``cluster.proc``) gets two sets of values (docs/condor.md):

- its Condor summary, ``http://jp-primary/Schema/Condor:<name>`` (the table is in
  docs/plugins.md): where it was submitted and executed, how it ended, when;
- its L&B status, as a gLite job's dump gives it: the events are mapped to L&B events as the WMS
  LogMonitor did (``mapper``) and replayed by the L&B state machine, so ``lb:status``,
  ``lb:doneCode``, ``lb:exitCode``, the histories and the JobRecord come from the same code.

A job registered with a ``condor://<schedd>/<cluster>.<proc>`` jobid gets the values of that job
only. Otherwise every job of the log is detailed (``condor:jobs`` lists them); when there are
several, each value's ``origin_detail`` names its ``cluster.proc``. Damage (truncation, a corrupt
event, times out of order or without a year) is reported; what was read before it still counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from jp_primary.attributes.names import CONDOR_LOG, LB_ATTRIBUTES
from jp_primary.plugins.base import DerivedValue, ExtractContext, Extraction, ExtractionProblem
from jp_primary.plugins.condor.jobids import cluster_proc
from jp_primary.plugins.condor.jobs import CondorJob, LogJobs, condor_jobid
from jp_primary.plugins.condor.reader import ReadOutcome, check_log, read_log
from jp_primary.plugins.lb.derive import derive_attributes
from jp_primary.plugins.lb.record import job_record

_C = f"{CONDOR_LOG}:"
# Types for the attribute type library (batch queries compare these as numbers and times): the
# Condor summary's. The L&B values this plugin derives are declared once, by the ``lb`` plugin
# shipped beside it; the rest (hosts, reasons, jobids) are strings.
ATTRIBUTE_TYPES: dict[str, str] = {
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


class CondorLogPlugin:
    name: ClassVar[str] = "condor-log"
    classes: ClassVar[tuple[str, ...]] = ("condor-log",)
    aliases: ClassVar[dict[str, str]] = {}
    namespaces: ClassVar[tuple[str, ...]] = (CONDOR_LOG, LB_ATTRIBUTES)
    attribute_types: ClassVar[dict[str, str]] = ATTRIBUTE_TYPES

    def extract(self, path: Path, context: ExtractContext) -> Extraction:
        extraction = Extraction()
        wanted = cluster_proc(context.jobid)
        log_jobs = LogJobs(wanted)
        outcome = ReadOutcome()
        log_jobs.add_all(read_log(path, outcome))
        jobs = log_jobs.finish()
        extraction.errors.extend(_damage(path, outcome))
        extraction.errors.extend(log_jobs.problems())
        if wanted is not None and not jobs and outcome.read:
            message = f"the log holds no event of job {wanted} (the jobid names it)"
            extraction.errors.append(ExtractionProblem(message))
        several = len(jobs) > 1
        for job in jobs:
            detail = f"condor-log {context.file_name} {job.key}".replace("  ", " ")
            origin = detail if several else None
            extraction.values.append(
                DerivedValue(
                    _C + "jobs", job.key, job.summary.first_time or context.committed_at, origin
                )
            )
            extraction.values.extend(_condor_values(job, context, origin))
            jobid = context.jobid if not several else condor_jobid(job.mapper.host, job.key)
            record = _lb_values(job, jobid, origin, extraction)
            if not several:
                extraction.job_record = record
        return extraction


def _damage(path: Path, outcome: ReadOutcome) -> list[ExtractionProblem]:
    check = check_log(path)
    problems = []
    if outcome.error is not None and check.headers <= outcome.read:
        problems.append(ExtractionProblem(f"cannot read the user log: {outcome.error}"))
    if check.headers > outcome.read:
        missing = check.headers - outcome.read
        message = (
            f"{missing} of {check.headers} events could not be read (truncated or corrupt log)"
        )
        problems.append(ExtractionProblem(message))
    elif outcome.read == 0 and not problems:
        empty = "the user log is empty" if check.empty else "no HTCondor user-log events found"
        problems.append(ExtractionProblem(empty))
    if check.without_year:
        problems.append(
            ExtractionProblem(
                f"{check.without_year} event(s) are dated without a year (the old MM/DD format);"
                " HTCondor's reader puts them in the current year, so their times may be wrong"
            )
        )
    return problems


def _condor_values(
    job: CondorJob, context: ExtractContext, origin: str | None
) -> list[DerivedValue]:
    return [
        DerivedValue(_C + local, value, when, origin)
        for local, value, when in job.summary.values(fallback_time=context.committed_at)
    ]


def _lb_values(
    job: CondorJob, jobid: str, origin: str | None, extraction: Extraction
) -> str | None:
    """Add the job's L&B values; return its JobRecord."""
    result = job.replay
    if result is None:
        return None
    result.status.jobid = jobid  # the mapper knows the job by cluster.proc only
    values, problems = derive_attributes(result)
    extraction.values.extend(
        v if origin is None else DerivedValue(v.name, v.value, v.timestamp, origin) for v in values
    )
    extraction.errors.extend(problems)
    extraction.errors.extend(
        ExtractionProblem(f"job {job.key}: L&B replay: {message}") for message, _ in result.problems
    )
    return job_record(result, values, jobid)
