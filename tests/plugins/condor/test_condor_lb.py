"""The Condor -> L&B mapping: each row of the table in docs/condor.md, replayed by the L&B state
machine, on logs written as HTCondor writes them (jp_primary.testing.condorlogs)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from htcondor2 import JobEventType as Ev
from hypothesis import given, settings
from hypothesis import strategies as st

from jp_primary.attributes.names import CONDOR_LOG, LB_ATTRIBUTES
from jp_primary.plugins.base import ExtractContext, Extraction
from jp_primary.plugins.condor.jobs import LogJobs
from jp_primary.plugins.condor.mapper import CondorEvent, JobMapper
from jp_primary.plugins.condor.plugin import CondorLogPlugin
from jp_primary.plugins.condor.times import event_time_us
from jp_primary.plugins.lb.statemachine import replay
from jp_primary.plugins.lb.status import State
from jp_primary.testing.condorlogs import WORKER2, LogWriter

JOBID = "https://lb.example.org:9000/condorJob1"
LB = LB_ATTRIBUTES + ":"


def extract(tmp_path: Path, w: LogWriter, jobid: str = JOBID) -> Extraction:
    path = tmp_path / "job.log"
    path.write_text(w.text())
    context = ExtractContext(jobid, "k", "condor-log", "job.log", datetime(2025, 1, 1, tzinfo=UTC))
    return CondorLogPlugin().extract(path, context)


def lb(extraction: Extraction) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for value in extraction.values:
        if value.name.startswith(LB) and ":" not in value.name[len(LB) :]:
            found.setdefault(value.name[len(LB) :], []).append(value.value)
    return found


def one(values: dict[str, list[str]], name: str) -> str:
    [value] = values[name]
    return value


def history(values: dict[str, list[str]]) -> list[str]:
    text = one(values, "fullStatusHistory")
    return [part.split('"')[0] for part in text.split('name="')[1:]]


def test_submit_is_accepted_with_the_condor_id(tmp_path: Path) -> None:
    w = LogWriter()
    w.submit("1234.0")
    values = lb(extract(tmp_path, w))
    assert one(values, "status") == "Ready"  # Accepted from the LogMonitor
    assert one(values, "condorId") == "1234.0"
    assert one(values, "jobId") == JOBID
    assert one(values, "UIHost") == "submit.example.org"
    assert history(values) == ["SUBMITTED", "READY"]


def test_execute_is_running_on_the_execute_host(tmp_path: Path) -> None:
    w = LogWriter()
    w.submit("1234.0")
    w.execute("1234.0", 60)
    values = lb(extract(tmp_path, w))
    assert one(values, "status") == "Running"
    assert one(values, "ceNode") == "worker1.example.org"
    assert "Running" in one(values, "stateEnterTimes")


def test_normal_termination_is_done_ok_with_exit_code_0(tmp_path: Path) -> None:
    w = LogWriter()
    w.submit("1234.0")
    w.execute("1234.0", 60)
    w.terminated("1234.0", 300, code=0)
    extraction = extract(tmp_path, w)
    assert extraction.errors == []
    values = lb(extraction)
    assert one(values, "status") == "Done"
    assert one(values, "doneCode") == "OK"
    assert one(values, "exitCode") == "0"
    assert one(values, "reason") == "Job terminated successfully"
    assert history(values) == ["SUBMITTED", "READY", "RUNNING", "DONE"]
    assert extraction.job_record is not None
    assert "<a:finalStatus>DONE</a:finalStatus>" in extraction.job_record
    assert f'jobid="{JOBID}"' in extraction.job_record


def test_non_zero_exit_is_done_ok_with_the_warning_and_the_code(tmp_path: Path) -> None:
    w = LogWriter()
    w.submit("1234.0")
    w.execute("1234.0", 60)
    w.terminated("1234.0", 300, code=3)
    values = lb(extract(tmp_path, w))
    assert one(values, "doneCode") == "OK"
    assert one(values, "exitCode") == "3"
    assert one(values, "reason") == "Warning: job exit code != 0"


def test_abnormal_termination_is_done_failed_with_the_signal(tmp_path: Path) -> None:
    w = LogWriter()
    w.submit("1234.0")
    w.execute("1234.0", 60)
    w.killed("1234.0", 300, signal=9)
    values = lb(extract(tmp_path, w))
    assert one(values, "status") == "Done"
    assert one(values, "doneCode") == "FAILED"
    assert one(values, "reason") == "Job terminated by signal 9"


def test_abort_is_cancel_done_then_done_cancelled(tmp_path: Path) -> None:
    w = LogWriter()
    w.submit("1234.0")
    w.aborted("1234.0", 30)
    values = lb(extract(tmp_path, w))
    assert one(values, "status") == "Cancelled"
    assert one(values, "reason") == "Aborted by user."
    assert one(values, "cancelReason") == "Aborted by user."
    assert "doneCode" not in values  # only given when the final state is Done
    assert one(values, "LRMSDoneStatus") == "CANCELLED"


def test_held_is_done_failed_with_the_hold_reason(tmp_path: Path) -> None:
    w = LogWriter()
    w.submit("1234.0")
    w.execute("1234.0", 60)
    w.held("1234.0", 120, reason="out of disk")
    values = lb(extract(tmp_path, w))
    assert one(values, "status") == "Done"
    assert one(values, "doneCode") == "FAILED"
    reason = "Got a job held event, reason: Error from slot1@worker1.example.org: out of disk"
    assert one(values, "reason") == reason


def test_released_is_resubmitted_and_waiting_then_runs_again(tmp_path: Path) -> None:
    w = LogWriter()
    w.submit("1234.0")
    w.execute("1234.0", 60)
    w.held("1234.0", 120)
    w.released("1234.0", 180)
    values = lb(extract(tmp_path, w))
    assert one(values, "status") == "Waiting"
    assert one(values, "resubmitted") == "1"
    w.execute("1234.0", 240, WORKER2)
    w.terminated("1234.0", 300)
    values = lb(extract(tmp_path, w))
    assert history(values) == [
        "SUBMITTED",
        "READY",
        "RUNNING",
        "DONE",
        "WAITING",
        "RUNNING",
        "DONE",
    ]
    assert one(values, "doneCode") == "OK"
    assert one(values, "ceNode") == "worker2.example.org"
    assert "out of disk" in one(values, "failureReasons")  # the hold stays in the record


def test_held_then_removed_is_cancelled(tmp_path: Path) -> None:
    w = LogWriter()
    w.submit("1234.0")
    w.execute("1234.0", 60)
    w.held("1234.0", 120)
    w.aborted("1234.0", 180)
    values = lb(extract(tmp_path, w))
    assert history(values) == ["SUBMITTED", "READY", "RUNNING", "DONE", "CANCELLED"]


@pytest.mark.parametrize("requeue", ["evicted", "shadow_exception", "reconnect_failed"])
def test_back_to_the_queue_is_a_resubmission(tmp_path: Path, requeue: str) -> None:
    w = LogWriter()
    w.submit("1234.0")
    w.execute("1234.0", 60)
    getattr(w, requeue)("1234.0", 120)
    w.execute("1234.0", 180, WORKER2)
    w.terminated("1234.0", 300)
    extraction = extract(tmp_path, w)
    assert extraction.errors == []
    values = lb(extraction)
    assert history(values) == ["SUBMITTED", "READY", "RUNNING", "WAITING", "RUNNING", "DONE"]
    assert one(values, "resubmitted") == "1"
    assert one(values, "possibleCeNodes").count("<item>") == 2


def test_disconnected_changes_nothing_and_reconnected_keeps_running(tmp_path: Path) -> None:
    w = LogWriter()
    w.submit("1234.0")
    w.execute("1234.0", 60)
    w.disconnected("1234.0", 120)
    values = lb(extract(tmp_path, w))
    assert one(values, "status") == "Running"
    w.reconnected("1234.0", 150)
    w.terminated("1234.0", 300)
    values = lb(extract(tmp_path, w))
    assert history(values) == ["SUBMITTED", "READY", "RUNNING", "DONE"]
    assert one(values, "ceNode") == "worker1.example.org"


def test_suspend_and_resume(tmp_path: Path) -> None:
    w = LogWriter()
    w.submit("1234.0")
    w.execute("1234.0", 60)
    w.suspended("1234.0", 90)
    assert one(lb(extract(tmp_path, w)), "suspended") == "1"
    w.unsuspended("1234.0", 120)
    assert one(lb(extract(tmp_path, w)), "suspended") == "0"


def test_grid_universe_job(tmp_path: Path) -> None:
    w = LogWriter()
    w.submit("1234.0")
    w.grid_submit("1234.0", 30, resource="batch slurm")
    values = lb(extract(tmp_path, w))
    assert one(values, "status") == "Scheduled"  # Transfer OK to the LRMS
    assert one(values, "rsl") == "batch slurm 12345"
    assert one(values, "reason") == "Job successfully submitted to the grid resource"
    w.grid_resource_down("1234.0", 40)  # HTCondor waits for the resource: no effect
    w.execute("1234.0", 60)
    w.terminated("1234.0", 300)
    values = lb(extract(tmp_path, w))
    assert history(values) == ["SUBMITTED", "READY", "SCHEDULED", "RUNNING", "DONE"]


def test_globus_submit_failed_and_resource_down(tmp_path: Path) -> None:
    w = LogWriter()
    w.submit("1234.0")
    w.globus_submit_failed("1234.0", 20)
    assert one(lb(extract(tmp_path, w)), "status") == "Ready"  # Transfer FAIL
    w.globus_submit("1234.0", 30)
    assert one(lb(extract(tmp_path, w)), "reason") == "Job successfully submitted to Globus"
    w.globus_resource_down("1234.0", 40)
    values = lb(extract(tmp_path, w))
    assert one(values, "doneCode") == "FAILED"
    assert one(values, "reason") == "Globus resource down"


def test_multi_proc_cluster_is_split_per_job(tmp_path: Path) -> None:
    w = LogWriter()
    for proc in range(3):
        w.submit(f"77.{proc}")
    for proc in range(3):
        w.execute(f"77.{proc}", 60 + proc)
    w.terminated("77.0", 300)
    w.killed("77.1", 310)
    extraction = extract(tmp_path, w)
    assert extraction.errors == []
    jobs = [v.value for v in extraction.values if v.name == f"{CONDOR_LOG}:jobs"]
    assert jobs == ["77.0", "77.1", "77.2"]
    status = {v.origin_detail: v.value for v in extraction.values if v.name == LB + "status"}
    assert status == {
        "condor-log job.log 77.0": "Done",
        "condor-log job.log 77.1": "Done",
        "condor-log job.log 77.2": "Running",
    }
    ids = {v.value for v in extraction.values if v.name == LB + "jobId"}
    assert ids == {f"condor://submit.example.org/77.{p}" for p in range(3)}
    assert all(v.origin_detail is not None for v in extraction.values)
    assert extraction.job_record is None  # one record per job: name the job to get it


def test_a_condor_jobid_selects_its_job(tmp_path: Path) -> None:
    w = LogWriter()
    for proc in range(2):
        w.submit(f"77.{proc}")
    w.execute("77.1", 60)
    extraction = extract(tmp_path, w, jobid="condor://submit.example.org/77.1")
    values = lb(extraction)
    assert one(values, "status") == "Running"
    assert one(values, "jobId") == "condor://submit.example.org/77.1"
    assert extraction.job_record is not None
    assert "77.0" in extraction.errors[0].message


def test_dagman_node_log(tmp_path: Path) -> None:
    w = LogWriter()
    for cluster, node in ((10, "A"), (11, "B")):
        w.submit(f"{cluster}.0", cluster, dag_node=node)
        w.execute(f"{cluster}.0", cluster + 60)
        w.terminated(f"{cluster}.0", cluster + 120)
    extraction = extract(tmp_path, w)
    done = [v.origin_detail for v in extraction.values if v.name == LB + "doneCode"]
    assert done == ["condor-log job.log 10.0", "condor-log job.log 11.0"]


def test_events_out_of_order_keep_the_log_order_and_are_reported(tmp_path: Path) -> None:
    w = LogWriter()
    w.submit("1234.0", 100)
    w.execute("1234.0", 50)  # the clock went back
    w.terminated("1234.0", 300)
    extraction = extract(tmp_path, w)
    values = lb(extraction)
    assert history(values) == ["SUBMITTED", "READY", "RUNNING", "DONE"]
    [problem] = extraction.errors
    assert "1 event(s) dated before the event before them" in problem.message


def test_times_with_a_zone_are_utc(tmp_path: Path) -> None:
    text = "000 (001.000.000) 2024-03-01T10:00:00Z Job submitted from host: <10.0.0.1:9618>\n...\n"
    path = tmp_path / "z.log"
    path.write_text(text)
    context = ExtractContext(JOBID, "k", "condor-log", "", datetime(2025, 1, 1, tzinfo=UTC))
    extraction = CondorLogPlugin().extract(path, context)
    [submitted] = [v for v in extraction.values if v.name == f"{CONDOR_LOG}:submitTime"]
    assert submitted.value == "2024-03-01T10:00:00Z"


def test_times_without_a_year_are_reported(tmp_path: Path) -> None:
    text = "000 (001.000.000) 03/01 10:00:00 Job submitted from host: <10.0.0.1:9618>\n...\n"
    path = tmp_path / "old.log"
    path.write_text(text)
    context = ExtractContext(JOBID, "k", "condor-log", "", datetime(2025, 1, 1, tzinfo=UTC))
    extraction = CondorLogPlugin().extract(path, context)
    assert any("without a year" in p.message for p in extraction.errors)
    assert one(lb(extraction), "status") == "Ready"  # the values are still there


def test_truncated_log_keeps_the_replay_of_what_was_read(tmp_path: Path) -> None:
    w = LogWriter()
    w.submit("1234.0")
    w.execute("1234.0", 60)
    w.terminated("1234.0", 300)
    path = tmp_path / "t.log"
    path.write_text(w.text()[:-200])
    context = ExtractContext(JOBID, "k", "condor-log", "", datetime(2025, 1, 1, tzinfo=UTC))
    extraction = CondorLogPlugin().extract(path, context)
    assert one(lb(extraction), "status") == "Running"
    assert extraction.errors[0].message.startswith("1 of 3 events could not be read")


def test_limits_bound_what_is_held(tmp_path: Path) -> None:
    log_jobs = LogJobs(None, max_jobs=2, max_held=2)
    for cluster in range(1, 5):
        log_jobs.add(CondorEvent(cluster, 0, int(Ev.SUBMIT), cluster * 1_000_000))
    assert [job.key for job in log_jobs.finish()] == ["1.0", "2.0"]
    messages = [p.message for p in log_jobs.problems()]
    assert any("not mapped" in m for m in messages)  # the first job holds 2 (RegJob, Accepted)
    assert any("2 event(s) of other jobs (3.0, 4.0)" in m for m in messages)


# -- the property: whatever the log, the replay accepts every mapped event ------------------

_EVENT_TYPES = [
    Ev.SUBMIT,
    Ev.EXECUTE,
    Ev.JOB_TERMINATED,
    Ev.JOB_ABORTED,
    Ev.JOB_HELD,
    Ev.JOB_RELEASED,
    Ev.JOB_EVICTED,
    Ev.SHADOW_EXCEPTION,
    Ev.JOB_DISCONNECTED,
    Ev.JOB_RECONNECTED,
    Ev.JOB_RECONNECT_FAILED,
    Ev.JOB_SUSPENDED,
    Ev.JOB_UNSUSPENDED,
    Ev.GRID_SUBMIT,
    Ev.GLOBUS_SUBMIT,
    Ev.GLOBUS_SUBMIT_FAILED,
    Ev.GLOBUS_RESOURCE_DOWN,
    Ev.GRID_RESOURCE_DOWN,
    Ev.IMAGE_SIZE,
]
_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "TerminatedNormally": st.booleans(),
        "ReturnValue": st.integers(-1, 255),
        "TerminatedBySignal": st.integers(1, 64),
        "TerminatedAndRequeued": st.booleans(),
        "HoldReason": st.text(max_size=20),
        "ExecuteHost": st.sampled_from(["<10.0.0.2:9618?alias=w.example.org>", "", "x"]),
        "GridResource": st.text(max_size=10),
    },
)
_EVENTS = st.lists(st.tuples(st.sampled_from(_EVENT_TYPES), _FIELDS), max_size=30)


@settings(max_examples=300, deadline=None)
@given(_EVENTS)
def test_the_state_machine_accepts_every_mapped_event(events: list[tuple[Ev, dict]]) -> None:
    mapper = JobMapper("1.0")
    mapped = []
    for index, (kind, fields) in enumerate(events):
        mapped += mapper.map(CondorEvent(1, 0, int(kind), index * 1_000_000, fields))
    result = replay(mapped)
    assert result.problems == []
    assert "bad" not in result.verdicts
    assert "unregistered" not in result.verdicts
    if not events:
        return
    kinds = [kind for kind, _ in events]
    # The job ends with its first termination or removal: Done or Cancelled, whatever follows.
    finals = [kind for kind in kinds if kind in (Ev.JOB_TERMINATED, Ev.JOB_ABORTED)]
    if finals:
        expected = State.DONE if finals[0] == Ev.JOB_TERMINATED else State.CANCELLED
        assert result.status.state == expected
    else:
        assert result.status.state not in (State.CANCELLED, State.UNDEFINED)


def test_events_after_the_job_left_the_queue_are_ignored_and_reported(tmp_path: Path) -> None:
    w = LogWriter()
    w.submit("1234.0")
    w.terminated("1234.0", 100)
    w.execute("1234.0", 200)  # a damaged log: nothing follows a termination
    extraction = extract(tmp_path, w)
    assert one(lb(extraction), "status") == "Done"
    [problem] = extraction.errors
    assert problem.message == (
        "job 1234.0: 1 event(s) after the job left the queue (terminated or removed) were ignored"
    )


def test_per_job_and_per_log_limits_are_reported() -> None:
    log_jobs = LogJobs(None, max_job_events=3, max_described=2)
    log_jobs.add(CondorEvent(1, 0, int(Ev.SUBMIT), 1_000_000, {"SubmitHost": "<10.0.0.1:1>"}))
    for second in range(2, 6):
        log_jobs.add(CondorEvent(1, 0, int(Ev.EXECUTE), second * 1_000_000, {}))
    normal = {"TerminatedNormally": True, "ReturnValue": 0}
    log_jobs.add(CondorEvent(1, 0, int(Ev.JOB_TERMINATED), 9_000_000, normal))
    [job] = log_jobs.finish()
    assert job.summary.event_count == 6  # every event is counted
    assert len(job.summary.described) == 2
    assert job.replay is not None
    assert job.replay.status.state == State.DONE  # the job's end is mapped past the limit
    messages = [p.message for p in log_jobs.problems()]
    assert messages == [
        "job 1.0: 3 event(s) beyond the limits of 3 L&B events per job and 50000 held at once"
        " were not mapped to L&B events (they are counted)",
        "job 1.0: 4 event(s) beyond the log's limit of 2 described events give no condor: values"
        " of their own (they are counted)",
    ]


def test_event_times() -> None:
    utc = int(datetime(2024, 3, 1, 10, 0, 0, tzinfo=UTC).timestamp()) * 1_000_000
    assert event_time_us("2024-03-01T10:00:00Z") == utc
    assert event_time_us("2024-03-01T10:00:00.5Z") == utc + 500_000
    local = int(time.mktime((2024, 3, 1, 10, 0, 0, 0, 0, -1))) * 1_000_000
    assert event_time_us("2024-03-01T10:00:00") == local
    assert event_time_us("2024-03-01T10:59:59") == local + 3599 * 1_000_000  # cached hour
    with pytest.raises(ValueError, match="not an event time"):
        event_time_us("03/01 10:00:00")


def test_terminated_and_requeued_is_done_then_resubmitted(tmp_path: Path) -> None:
    w = LogWriter()
    w.submit("1234.0")
    w.execute("1234.0", 60)
    w.evicted_requeued("1234.0", 120, code=2)
    values = lb(extract(tmp_path, w))
    assert history(values) == ["SUBMITTED", "READY", "RUNNING", "DONE", "WAITING"]
    assert one(values, "exitCode") == "2"
    assert one(values, "resubmitted") == "1"


def test_executable_error_and_image_size_change_nothing(tmp_path: Path) -> None:
    w = LogWriter()
    w.submit("1234.0")
    w.execute("1234.0", 60)
    w.image_size("1234.0", 70)
    w.executable_error("1234.0", 80)
    extraction = extract(tmp_path, w)
    assert extraction.errors == []
    values = lb(extraction)
    assert history(values) == ["SUBMITTED", "READY", "RUNNING"]
