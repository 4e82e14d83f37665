"""One user log, job by job: summary, L&B mapping and replay of each job (pure).

``LogJobs`` takes the log's events in order. Per job (``cluster.proc``) it keeps the Condor
summary and maps the events to L&B events (``mapper.JobMapper``). A job's L&B events are
replayed by the L&B state machine (``lb.statemachine.replay``, the code that serves L&B dumps)
as soon as the job leaves the queue (terminated or removed) and then dropped, so only the jobs
still in the queue hold events. Memory stays bounded however long the log is: ``max_jobs`` jobs
are detailed (the rest are counted and named in a problem), a job maps at most
``max_job_events`` L&B events and all jobs in the queue together hold at most ``max_held``
(beyond, events are counted in the summary but not mapped, except the job's end, so its final
status is still right), and the summaries keep at most ``max_described`` events to describe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from htcondor2 import JobEventType as Ev

from jp_primary.plugins.base import ExtractionProblem
from jp_primary.plugins.condor.mapper import CondorEvent, JobMapper
from jp_primary.plugins.condor.summary import DESCRIBED_TYPES, JobSummary
from jp_primary.plugins.lb.events import Event
from jp_primary.plugins.lb.statemachine import Replay, replay
from jp_primary.timefmt import micros_text

_NONE_HELD: list[Event] = []  # the events of a replayed job (shared: never appended to)
MAX_JOBS = 1_000
MAX_JOB_EVENTS = 20_000  # L&B events mapped per job
MAX_HELD = 50_000  # L&B events held at once by the jobs still in the queue
MAX_DESCRIBED = 20_000  # summary events (submit, execute, ...) kept per log to describe
_NAMED = 10
# After these a job is out of the queue: no event of it follows (HTCondor's own rule).
_FINAL = frozenset({int(Ev.JOB_TERMINATED), int(Ev.JOB_ABORTED)})


@dataclass(slots=True)
class CondorJob:
    """One job of the log: its summary, its L&B events until replayed, then the replay."""

    summary: JobSummary
    mapper: JobMapper
    events: list[Event] = field(default_factory=list)
    replay: Replay | None = None
    last_time_us: int = 0
    out_of_order: int = 0  # events dated before the event before them
    first_out_of_order: str | None = None
    unmapped: int = 0  # events summarised but not mapped (the in-flight limit)
    undescribed: int = 0  # events counted but not described (the per-log limit)
    ended: bool = False  # left the queue (or the log ended): replayed
    after_end: int = 0  # events of the job after it left the queue (ignored)

    @property
    def key(self) -> str:
        return self.summary.job_id


def condor_jobid(host: str, job: str) -> str:
    """The jobid scheme of Condor jobs without an L&B jobid (docs/condor.md)."""
    return f"condor://{host}/{job}"


class LogJobs:
    def __init__(
        self,
        wanted: str | None = None,
        *,
        jobid: str | None = None,
        max_jobs: int = MAX_JOBS,
        max_job_events: int = MAX_JOB_EVENTS,
        max_held: int = MAX_HELD,
        max_described: int = MAX_DESCRIBED,
        on_replay: Callable[[CondorJob, Replay], None] | None = None,
    ) -> None:
        """``wanted``: the one ``cluster.proc`` to detail (None: every job); ``jobid``: the L&B
        jobid to give the job when the log holds only it (else each gets a condor:// one);
        ``on_replay``: given each job's replay as it is made, instead of keeping it in the job
        (keeping them all is what the plugin does, bounded by ``max_jobs``)."""
        self.on_replay = on_replay
        self.wanted = wanted
        self.jobid = jobid
        self.max_jobs, self.max_job_events, self.max_held = max_jobs, max_job_events, max_held
        self.jobs: dict[tuple[int, int], CondorJob] = {}
        self.held = 0
        self.max_described = max_described
        self.described = 0  # events kept by the summaries to describe
        self.other_jobs: set[str] = set()
        self.other_events = 0
        self.over_limit = False

    def add_all(self, events: Iterable[CondorEvent]) -> None:
        for event in events:
            self.add(event)

    def add(self, event: CondorEvent) -> None:
        if event.proc < 0:  # cluster-level bookkeeping (late materialization), no job
            return
        job = self.jobs.get((event.cluster, event.proc))
        if job is None:
            key = event.job
            if (self.wanted is not None and key != self.wanted) or len(self.jobs) >= self.max_jobs:
                self.other_events += 1
                if len(self.other_jobs) < _NAMED:
                    self.other_jobs.add(key)
                return
            job = self._new_job(event)
        summary = job.summary
        when = event.time_us
        describe = self.described < self.max_described
        if summary.add(event.type, when, event.fields, describe):
            self.described += 1
        elif not describe and event.type in DESCRIBED_TYPES:
            job.undescribed += 1
        if when < job.last_time_us:
            job.out_of_order += 1
            if job.first_out_of_order is None:
                job.first_out_of_order = micros_text(when)
        else:
            job.last_time_us = when
        if job.ended:  # HTCondor writes nothing of a job after it left the queue
            job.after_end += 1
            return
        if (
            self.held >= self.max_held or len(job.events) >= self.max_job_events
        ) and event.type not in _FINAL:
            job.unmapped += 1
            self.over_limit = True
        else:
            mapped = job.mapper.map(event)
            if mapped:
                job.events.extend(mapped)
                self.held += len(mapped)
        if event.type in _FINAL:
            job.ended = True
            self._replay(job)

    def _new_job(self, event: CondorEvent) -> CondorJob:
        summary = JobSummary(cluster=event.cluster, proc=event.proc)
        job = CondorJob(summary, JobMapper(event.job))
        self.jobs[event.cluster, event.proc] = job
        return job

    def _replay(self, job: CondorJob) -> None:
        if job.events:
            result = replay(job.events)
            self.held -= len(job.events)
            job.events = _NONE_HELD
            if self.on_replay is None:
                job.replay = result
            else:
                self.on_replay(job, result)

    def finish(self) -> list[CondorJob]:
        """Replay the jobs still in flight; every job, in the order the log first named them."""
        for job in self.jobs.values():
            if not job.ended:
                job.ended = True
                self._replay(job)
        return list(self.jobs.values())

    def problems(self) -> list[ExtractionProblem]:
        out: list[ExtractionProblem] = []
        for job in self.jobs.values():
            if job.after_end:
                out.append(
                    ExtractionProblem(
                        f"job {job.key}: {job.after_end} event(s) after the job left the queue"
                        " (terminated or removed) were ignored"
                    )
                )
            if job.out_of_order:
                out.append(
                    ExtractionProblem(
                        f"job {job.key}: {job.out_of_order} event(s) dated before the event"
                        f" before them (first at {job.first_out_of_order}); the log order is kept"
                    )
                )
            if job.unmapped:
                out.append(
                    ExtractionProblem(
                        f"job {job.key}: {job.unmapped} event(s) beyond the limits of"
                        f" {self.max_job_events} L&B events per job and {self.max_held} held at"
                        " once were not mapped to L&B events (they are counted)"
                    )
                )
            if job.undescribed:
                out.append(
                    ExtractionProblem(
                        f"job {job.key}: {job.undescribed} event(s) beyond the log's limit of"
                        f" {self.max_described} described events give no condor: values"
                        " of their own (they are counted)"
                    )
                )
        if self.other_jobs:
            listed = ", ".join(sorted(self.other_jobs, key=_job_order))
            more = ", ..." if self.other_events > len(self.other_jobs) else ""
            why = (
                f"only job {self.wanted} is detailed"
                if self.wanted is not None
                else f"at most {self.max_jobs} jobs are detailed"
            )
            out.append(
                ExtractionProblem(
                    f"the log also has {self.other_events} event(s) of other jobs"
                    f" ({listed}{more}); they were left out: {why}"
                )
            )
        return out


def _job_order(job: str) -> tuple[int, int]:
    cluster, _, proc = job.partition(".")
    return int(cluster), int(proc)
