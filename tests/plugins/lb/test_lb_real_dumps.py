"""The real gLite L&B dumps (2005-2008) replay to the states the original derived from them."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jp_primary.attributes.names import LB_ATTRIBUTES, LB_TAG
from jp_primary.plugins.base import ExtractContext
from jp_primary.plugins.lb.dump import parse_dump, split_by_job
from jp_primary.plugins.lb.history import final_entry
from jp_primary.plugins.lb.jobids import subjob_ids
from jp_primary.plugins.lb.plugin import LBPlugin
from jp_primary.plugins.lb.statemachine import Replay, replay
from jp_primary.plugins.lb.status import DoneCode, State

from .conftest import with_jobid

TEMPLATES = ("perf_dag_avg_events.lb", "perf_simple_max_events.lb", "perf_dag_avg_subjobs.lb")
TEMPLATE_JOBID = "https://lb.example.org:9000/Tmpl4te0Tmpl4te0Tmpl4A"


def lines_of(directory: Path, name: str) -> list[str]:
    lines = (directory / name).read_text(encoding="utf-8").splitlines()
    return with_jobid(lines, TEMPLATE_JOBID) if name in TEMPLATES else lines


def replay_file(directory: Path, name: str) -> Replay:
    parsed = parse_dump(lines_of(directory, name))
    assert parsed.problems == []
    return replay(parsed.events)


def history(result: Replay) -> list[str]:
    return [entry.state.label for entry in result.history]


def values_of(directory: Path, name: str) -> dict[str, list[str]]:
    context = ExtractContext("", "key", "lb", "", datetime.now(UTC))
    extraction = LBPlugin().extract(directory / name, context)
    out: dict[str, list[str]] = {}
    for value in extraction.values:
        out.setdefault(value.name, []).append(value.value)
    return out


def test_every_real_dump_parses_without_error(real_dumps: Path) -> None:
    names = sorted(path.name for path in real_dumps.glob("*.lb"))
    assert len(names) == 9
    for name in names:
        parsed = parse_dump(lines_of(real_dumps, name))
        assert parsed.problems == [], name
        assert parsed.events, name


def test_waiting_sample(real_dumps: Path) -> None:
    result = replay_file(real_dumps, "sample_job_waiting.lb")
    assert result.status.state == State.READY  # its last event, a WM EnQueued OK, moves it on
    assert history(result) == ["Submitted", "Waiting", "Ready"]
    assert result.events[0].seq[-1] == 0  # old seqcodes without LBS


def test_aborted_sample(real_dumps: Path) -> None:
    result = replay_file(real_dumps, "sample_job_aborted.lb")
    assert result.status.state == State.ABORTED
    assert history(result) == ["Submitted", "Waiting", "Ready", "Aborted"]
    assert result.status.done_code is None


def test_cleared_sample(real_dumps: Path) -> None:
    result = replay_file(real_dumps, "sample_job_cleared.lb")
    assert result.status.state == State.CLEARED
    final = final_entry(result.history)
    assert final is not None
    assert final.state == State.DONE
    assert result.status.done_code == DoneCode.OK
    expected = ["Submitted", "Waiting", "Ready", "Scheduled", "Running", "Done", "Cleared"]
    assert history(result) == expected
    values = values_of(real_dumps, "sample_job_cleared.lb")
    assert values[f"{LB_ATTRIBUTES}:finalStatus"] == ["Done"]
    assert values[f"{LB_ATTRIBUTES}:doneCode"] == ["OK"]
    assert values[f"{LB_ATTRIBUTES}:status"] == ["Cleared"]


def test_tagged_sample(real_dumps: Path) -> None:
    result = replay_file(real_dumps, "sample_job_tagged_done.lb")
    assert result.status.state == State.DONE
    assert result.status.done_code == DoneCode.OK
    assert history(result) == ["Submitted", "Waiting", "Ready", "Scheduled", "Running", "Done"]
    values = values_of(real_dumps, "sample_job_tagged_done.lb")
    assert values[f"{LB_TAG}:color"] == ["green"]
    assert "<name>color</name><value>green</value>" in values[f"{LB_ATTRIBUTES}:userTags"][0]


def test_perf_simple_avg_job(real_dumps: Path) -> None:
    result = replay_file(real_dumps, "perf_simple_avg_events.lb")
    assert result.status.state == State.CLEARED
    final = final_entry(result.history)
    assert final is not None
    assert final.state == State.DONE
    assert result.status.done_code == DoneCode.OK
    assert result.status.exit_code == 0
    assert history(result) == ["Submitted", "Waiting", "Ready", "Running", "Done", "Cleared"]
    values = values_of(real_dumps, "perf_simple_avg_events.lb")
    assert values[f"{LB_ATTRIBUTES}:LRMSDoneStatus"] == ["OK"]
    assert values[f"{LB_ATTRIBUTES}:VO"] == ["cms"]
    assert f"{LB_ATTRIBUTES}:JDL:VirtualOrganisation" in values


def test_perf_simple_max_job(real_dumps: Path) -> None:
    result = replay_file(real_dumps, "perf_simple_max_events.lb")
    assert result.status.state == State.ABORTED
    assert result.status.reason == "X509 proxy expired"
    assert result.status.done_code == DoneCode.FAILED
    states = history(result)
    assert len(states) == 16
    assert states[:2] == ["Submitted", "Waiting"]
    assert states[2:14] == ["Running", "Waiting"] * 5 + ["Running", "Done"]
    assert states[14:] == ["Waiting", "Aborted"]


def test_dag_parent_template(real_dumps: Path) -> None:
    result = replay_file(real_dumps, "perf_dag_avg_events.lb")
    assert result.status.jobtype == "DAG"
    assert result.status.children_num == 3
    assert result.status.children_hist[State.UNKNOWN] == 3


def test_subjobs_template_alone_stays_undefined(real_dumps: Path) -> None:
    result = replay_file(real_dumps, "perf_dag_avg_subjobs.lb")
    assert result.status.state == State.UNDEFINED  # no RegJob in it
    assert result.history == []


def test_collection_dump_parent_and_children(real_dumps: Path) -> None:
    parsed = parse_dump(lines_of(real_dumps, "perf_collection_avg_events.lb"))
    jobs = {unique: replay(events) for unique, events in split_by_job(parsed.events).items()}
    assert len(jobs) == 101
    parents = [r for r in jobs.values() if r.status.jobtype == "COLLECTION"]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.status.state == State.DONE
    assert parent.status.children_num == 100
    assert parent.status.jobid is not None
    children = subjob_ids(parent.status.jobid, 100, parent.status.seed)
    child_results = {r.status.jobid: r for r in jobs.values() if r is not parent}
    assert set(children) == set(child_results)
    counts = Counter(r.status.state for r in child_results.values())
    assert counts == {State.CLEARED: 22, State.DONE: 78}
    assert all(r.status.parent_job == parent.status.jobid for r in child_results.values())


def test_plugin_on_collection_dump_reports_the_other_jobs(real_dumps: Path) -> None:
    context = ExtractContext("", "key", "lb", "", datetime.now(UTC))
    extraction = LBPlugin().extract(real_dumps / "perf_collection_avg_events.lb", context)
    mixed = [error for error in extraction.errors if "different job" in error.message]
    assert len(mixed) == 1
    lines = lines_of(real_dumps, "perf_collection_avg_events.lb")
    jobids = [line.split('DG.JOBID="')[1].split('"')[0] for line in lines]
    other = next(n for n, jobid in enumerate(jobids, start=1) if jobid != jobids[0])
    assert mixed[0].line == other  # the first line of another job
    assert "more line(s)" in mixed[0].message
    others = [error for error in extraction.errors if error not in mixed]
    assert all("JDL" in error.message for error in others)
    statuses = [v.value for v in extraction.values if v.name == f"{LB_ATTRIBUTES}:status"]
    assert len(statuses) == 1


@pytest.mark.parametrize("name", ["sample_job_cleared.lb", "perf_simple_avg_events.lb"])
def test_job_record_is_well_formed(real_dumps: Path, name: str) -> None:
    import xml.etree.ElementTree as ET

    from jp_primary.plugins.lb.record import JOB_RECORD_NS

    jobid = replay_file(real_dumps, name).status.jobid
    assert jobid is not None
    record = LBPlugin().job_record(real_dumps / name, jobid)
    root = ET.fromstring(record)  # noqa: S314  (our own output)
    assert root.tag == f"{{{JOB_RECORD_NS}}}jobRecord"
    assert root.get("jobid") == jobid
    locals_ = [child.tag.split("}")[1] for child in root]
    for required in ("jobId", "user", "RB", "finalStatus", "finalStatusDate", "retryCount"):
        assert required in locals_
    assert locals_[-3:-1] == ["lastStatusHistory", "fullStatusHistory"]
    final = root.find(f"{{{LB_ATTRIBUTES}}}finalStatus")
    assert final is not None
    assert final.text == "DONE"
