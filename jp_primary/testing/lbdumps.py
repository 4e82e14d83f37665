"""A generator of realistic gLite L&B dumps, deterministic from a ``random.Random``.

The event flows follow what the gLite WMS components logged (NS → WM → JobController →
LogMonitor and the JobWrapper on the worker node), with sequence codes carried between components
as they were: the JobWrapper's events keep the LM counter they were handed (0 on the first cycle)
and bump LRMS, so they sort before the LogMonitor's events of the same cycle.

``generate_job(rng, scenario)`` gives one job's dump lines; ``generate_collection`` a parent with
its subjobs; ``generate_workload`` N events over M jobs for benchmarks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from jp_primary.testing.lbflows import JobLog

SCENARIOS = (
    "done",
    "cleared",
    "aborted",
    "cancelled",
    "shallow_resubmission",
    "deep_resubmission",
    "lm_failed_while_running",
    "lm_failed_then_jobwrapper_done",
    "tagged",
    "escapes",
    "old_seqcodes",
    "arrived_prefix",
    "dag_parent",
    "collection_parent",
)
# Scenarios a benchmark workload mixes (single jobs, realistic proportions).
WORKLOAD_MIX = (
    ("cleared", 40),
    ("done", 20),
    ("aborted", 10),
    ("shallow_resubmission", 8),
    ("deep_resubmission", 8),
    ("cancelled", 4),
    ("tagged", 4),
    ("lm_failed_while_running", 2),
    ("escapes", 2),
    ("old_seqcodes", 2),
)


@dataclass(frozen=True)
class Collection:
    parent_jobid: str
    dumps: dict[str, list[str]]  # jobid -> lines (the parent's first)


def generate_job(
    rng: random.Random,
    scenario: str,
    *,
    jobid: str | None = None,
    padding: int = 0,
) -> list[str]:
    """The dump lines of one job in ``scenario``; ``padding`` adds that many Pending events."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    log = JobLog(
        rng,
        jobid=jobid,
        old_seqcodes=scenario == "old_seqcodes",
        arrived=scenario == "arrived_prefix",
    )
    if scenario in ("dag_parent", "collection_parent"):
        jobtype = "DAG" if scenario == "dag_parent" else "COLLECTION"
        return _parent(log, jobtype, ["Done"] * 4)
    _SCRIPTS[scenario](log, padding)
    return log.lines


def _done(log: JobLog, padding: int) -> None:
    log.register()
    log.through_wm(pending=padding)
    log.submit_to_lrms()
    log.wrapper_runs(really_running=True)
    log.wrapper_done("OK")
    log.lm_terminated("OK", wn_seq=True)


def _cleared(log: JobLog, padding: int) -> None:
    _done(log, padding)
    log.clear()


def _aborted(log: JobLog, padding: int) -> None:
    log.register()
    log.through_wm(pending=padding + 2, match=False)
    log.wm_abort("no compatible resources")


def _cancelled(log: JobLog, padding: int) -> None:
    log.register()
    log.through_wm(pending=padding)
    log.submit_to_lrms()
    log.cancel()


def _shallow(log: JobLog, padding: int) -> None:
    log.register()
    log.through_wm(pending=padding)
    log.submit_to_lrms()
    log.wrapper_runs(really_running=False)
    log.lm_terminated("FAILED", wn_seq=False, reason="Got a job held event, reason: timeout")
    log.lm_resubmit("SHALLOW")
    log.through_wm(dequeue_source="WorkloadManager")
    log.submit_to_lrms()
    log.wrapper_runs(really_running=True)
    log.wrapper_done("OK")
    log.lm_terminated("OK", wn_seq=True)


def _deep(log: JobLog, padding: int) -> None:
    log.register()
    log.through_wm(pending=padding)
    log.submit_to_lrms()
    log.wrapper_runs(really_running=True)
    log.wrapper_done("FAILED")
    log.lm_terminated("FAILED", wn_seq=True, reason="Job got an error while in the CondorG queue.")
    log.lm_resubmit("WILLRESUB")
    log.wm_resubmission()
    log.through_wm(dequeue_source="WorkloadManager")
    log.submit_to_lrms()
    log.wrapper_runs(really_running=True)
    log.wrapper_done("OK")
    log.lm_terminated("OK", wn_seq=True)
    log.clear()


def _lm_failed(log: JobLog, padding: int, *, wrapper_done_later: bool = False) -> None:
    log.register()
    log.through_wm(pending=padding)
    log.submit_to_lrms()
    log.wrapper_runs(really_running=True)
    # The network breaks: the LogMonitor gives up and resubmits while the payload runs on.
    log.lm_terminated("FAILED", wn_seq=False, reason="Job got an error while in the CondorG queue.")
    log.lm_resubmit("WILLRESUB", enqueue=False)
    if wrapper_done_later:
        log.wrapper_done("OK", delay=3600.0)


def _tagged(log: JobLog, padding: int) -> None:
    _done(log, padding)
    log.user_tag("color", "red")
    log.user_tag("Color", "green")
    log.user_tag("http://example.org/jp:quality", "good")


def _escapes(log: JobLog, padding: int) -> None:
    log.jdl = (
        '[ Executable = "/bin/sh"; Arguments = "-c \\"echo a\\\\b\\"";'
        ' VirtualOrganisation = "vo.example.org"; ]'
    )
    _done(log, padding)
    log.user_tag("note", 'said "hi"\nand left C:\\temp\\')


_SCRIPTS = {
    "done": _done,
    "cleared": _cleared,
    "aborted": _aborted,
    "cancelled": _cancelled,
    "shallow_resubmission": _shallow,
    "deep_resubmission": _deep,
    "lm_failed_while_running": _lm_failed,
    "lm_failed_then_jobwrapper_done": lambda log, padding: _lm_failed(
        log, padding, wrapper_done_later=True
    ),
    "tagged": _tagged,
    "escapes": _escapes,
    "old_seqcodes": _cleared,
    "arrived_prefix": _cleared,
}


def _parent(log: JobLog, jobtype: str, child_states: list[str]) -> list[str]:
    log.register(jobtype=jobtype, nsubjobs=len(child_states))
    log.parent_states(child_states)
    return log.lines


def generate_collection(
    rng: random.Random, children: int, *, jobtype: str = "COLLECTION"
) -> Collection:
    """A collection (or DAG) parent and its ``children`` subjobs, each with its own dump."""
    from jp_primary.plugins.lb.jobids import subjob_ids

    parent = JobLog(rng)
    outcomes = [rng.choice(("done", "cleared", "cleared", "aborted")) for _ in range(children)]
    finals = {"done": "Done", "cleared": "Cleared", "aborted": "Aborted"}
    parent_lines = _parent(parent, jobtype, [finals[o] for o in outcomes])
    dumps = {parent.jobid: parent_lines}
    assert parent.seed is not None  # noqa: S101  (the parent always has one)
    ids = subjob_ids(parent.jobid, children, parent.seed)
    for child_id, outcome in zip(ids, outcomes, strict=True):
        log = JobLog(rng, jobid=child_id, parent=parent.jobid, user=parent.user)
        _SCRIPTS[outcome](log, 0)
        dumps[child_id] = log.lines
    return Collection(parent.jobid, dumps)


def generate_workload(rng: random.Random, events: int, jobs: int) -> list[list[str]]:
    """``jobs`` single-job dumps with ``events`` lines in total (Pending events pad them)."""
    names = [name for name, _ in WORKLOAD_MIX]
    weights = [weight for _, weight in WORKLOAD_MIX]
    dumps = []
    for index in range(jobs):
        target = events // jobs + (1 if index < events % jobs else 0)
        scenario = rng.choices(names, weights)[0]
        seed = rng.getrandbits(64)
        # Seeded generators for reproducible test data, not secrets.
        base = len(generate_job(random.Random(seed), scenario))  # noqa: S311
        padding = max(0, target - base)
        dumps.append(generate_job(random.Random(seed), scenario, padding=padding))  # noqa: S311
    return dumps
