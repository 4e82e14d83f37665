"""The status timeline (services/provenance/timeline.py): L&B and HTCondor histories, branches."""

from __future__ import annotations

from datetime import UTC, datetime

from jp_primary.attributes.names import CONDOR_LOG, JP_PRIMARY, LB_ATTRIBUTES
from jp_primary.services.provenance.timeline import build

NS = LB_ATTRIBUTES


def _history(*entries: tuple[str, str, str]) -> str:
    return "\n".join(
        f'<status xmlns="{NS}" name="{name}" timestamp="{at}" reason="" destination="{where}"/>'
        for name, at, where in entries
    )


def test_each_waiting_after_the_first_starts_a_branch() -> None:
    history = _history(
        ("SUBMITTED", "2024-03-01T10:00:00.000000", ""),
        ("WAITING", "2024-03-01T10:00:01.000000", ""),
        ("READY", "2024-03-01T10:00:02.000000", "ce1.example.org:2119/jobmanager"),
        ("RUNNING", "2024-03-01T10:00:03.000000", "ce1.example.org:2119/jobmanager"),
        ("WAITING", "2024-03-01T10:05:00.000000", ""),
        ("READY", "2024-03-01T10:05:01.000000", "ce2.example.org:2119/jobmanager"),
        ("DONE", "2024-03-01T10:09:00.000000", "ce2.example.org:2119/jobmanager"),
    )
    timeline = build([(f"{NS}:fullStatusHistory", history)])
    assert timeline.source == "L&B"
    assert [[s.state for s in b.steps] for b in timeline.branches] == [
        ["Submitted", "Waiting", "Ready", "Running"],
        ["Waiting", "Ready", "Done"],
    ]
    first, second = timeline.branches
    assert first.fork is None
    assert second.fork == (first.steps[-1].x, first.steps[-1].y)  # forks where the first ended
    assert second.steps[-1].where == "ce2.example.org:2119/jobmanager"
    assert second.steps[-1].at == datetime(2024, 3, 1, 10, 9, tzinfo=UTC)
    xs = [s.x for s in timeline.steps]
    assert xs == sorted(xs)
    assert len(set(xs)) == len(xs)
    assert timeline.width > xs[-1]
    assert timeline.height > second.y


def test_the_inconsistency_flag_and_no_history() -> None:
    flag = "lm-failed-while-payload-running: the JobWrapper never reported Done"
    timeline = build([(f"{JP_PRIMARY}:replayInconsistency", flag)])
    assert timeline.source == ""
    assert timeline.branches == []
    assert timeline.inconsistency == flag


def test_condor_executions_are_branches() -> None:
    values = [
        (f"{CONDOR_LOG}:submitTime", "2024-03-01T10:00:00Z"),
        (f"{CONDOR_LOG}:submitHost", "submit.example.org"),
        (f"{CONDOR_LOG}:executeTime", "2024-03-01T10:01:00Z"),
        (f"{CONDOR_LOG}:executeHost", "wn1.example.org"),
        (f"{CONDOR_LOG}:holdTime", "2024-03-01T10:02:00Z"),
        (f"{CONDOR_LOG}:holdReason", "disk full"),
        (f"{CONDOR_LOG}:executeTime", "2024-03-01T10:03:00Z"),
        (f"{CONDOR_LOG}:executeHost", "wn2.example.org"),
        (f"{CONDOR_LOG}:terminateTime", "2024-03-01T10:04:00Z"),
        (f"{CONDOR_LOG}:terminatedNormally", "true"),
        (f"{CONDOR_LOG}:returnValue", "0"),
    ]
    timeline = build(values)
    assert timeline.source == "HTCondor"
    assert [[(s.state, s.where or s.reason) for s in b.steps] for b in timeline.branches] == [
        [
            ("Submitted", "submit.example.org"),
            ("Running", "wn1.example.org"),
            ("Held", "disk full"),
        ],
        [("Running", "wn2.example.org"), ("Completed", "")],
    ]
    assert timeline.branches[1].steps[-1].done_code == "0"
