"""The LBPlugin on generated files: attribute formats, the inconsistency flag, bad input."""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jp_primary.attributes.names import JP_PRIMARY, LB_ATTRIBUTES, LB_JDL, LB_TAG
from jp_primary.plugins.base import ExtractContext, Extraction, FilePlugin
from jp_primary.plugins.lb.jobids import subjob_ids
from jp_primary.plugins.lb.plugin import LBPlugin
from jp_primary.testing.lbdumps import generate_collection, generate_job

INCONSISTENCY = f"{JP_PRIMARY}:replayInconsistency"


def write(tmp_path: Path, lines: list[str] | bytes, name: str = "lb") -> Path:
    path = tmp_path / name
    if isinstance(lines, bytes):
        path.write_bytes(lines)
    else:
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def jobid_of(lines: list[str]) -> str:
    return lines[0].split('DG.JOBID="')[1].split('"')[0]


def extract(path: Path, jobid: str = "") -> Extraction:
    context = ExtractContext(jobid, "key", "lb", "", datetime(2026, 1, 1, tzinfo=UTC))
    return LBPlugin().extract(path, context)


def named(extraction: Extraction, local: str, ns: str = LB_ATTRIBUTES) -> list[str]:
    return [v.value for v in extraction.values if v.name == f"{ns}:{local}"]


def test_plugin_satisfies_the_protocol() -> None:
    plugin = LBPlugin()
    assert isinstance(plugin, FilePlugin)
    assert plugin.name == "lb"
    assert plugin.classes == ("lb",)
    assert plugin.aliases == {"urn:org.glite.jp.primary:lb": "lb"}
    assert {LB_ATTRIBUTES, LB_JDL, LB_TAG, JP_PRIMARY} <= set(plugin.namespaces)


def test_values_and_formats_of_a_cleared_job(tmp_path: Path) -> None:
    lines = generate_job(random.Random(4), "cleared")
    extraction = extract(write(tmp_path, lines), jobid_of(lines))
    assert extraction.errors == []
    assert named(extraction, "status") == ["Cleared"]
    assert named(extraction, "finalStatus") == ["Done"]
    assert named(extraction, "doneCode") == ["OK"]
    assert named(extraction, "finalDoneStatus") == ["OK"]
    assert named(extraction, "jobType") == ["SIMPLE"]
    assert named(extraction, "retryCount") == ["0"]
    assert named(extraction, "jobId") == [jobid_of(lines)]
    (date,) = named(extraction, "finalStatusDate")
    assert datetime.strptime(date, "%Y-%m-%dT%H:%M:%S.%f")  # noqa: DTZ007  (format check only)
    full = ET.fromstring(f"<h>{named(extraction, 'fullStatusHistory')[0]}</h>")  # noqa: S314
    names = [element.get("name") for element in full]
    assert names == ["SUBMITTED", "WAITING", "READY", "RUNNING", "DONE", "CLEARED"]
    done = full[4]
    assert done.get("doneCode") == "0"
    assert done.get("destination") == named(extraction, "destination")[0]
    assert full[0].get("destination") is None  # only Ready..Done carry one
    stamps = {v.timestamp for v in extraction.values if v.name.endswith(":finalStatus")}
    assert stamps == {datetime.strptime(date + "+0000", "%Y-%m-%dT%H:%M:%S.%f%z")}


def test_last_status_history_is_the_last_cycle(tmp_path: Path) -> None:
    lines = generate_job(random.Random(4), "deep_resubmission")
    extraction = extract(write(tmp_path, lines))
    last = ET.fromstring(f"<h>{named(extraction, 'lastStatusHistory')[0]}</h>")  # noqa: S314
    names = [element.get("name") for element in last]
    assert names == ["SUBMITTED", "WAITING", "READY", "RUNNING", "DONE", "CLEARED"]
    full = named(extraction, "fullStatusHistory")[0]
    assert full.count("<status ") == 10
    assert named(extraction, "retryCount") == ["1"]


def test_done_code_only_when_final_state_is_done(tmp_path: Path) -> None:
    extraction = extract(write(tmp_path, generate_job(random.Random(4), "aborted")))
    assert named(extraction, "finalStatus") == ["Aborted"]
    assert named(extraction, "doneCode") == []
    assert named(extraction, "finalStatusReason") == ["no compatible resources"]


def test_tags_and_jdl_values(tmp_path: Path) -> None:
    extraction = extract(write(tmp_path, generate_job(random.Random(4), "tagged")))
    assert named(extraction, "color", LB_TAG) == ["red", "green"]  # one value per UserTag
    (tags,) = named(extraction, "userTags")
    assert "<tag><name>color</name><value>green</value></tag>" in tags
    assert named(extraction, "VirtualOrganisation", LB_JDL)[0] in ("cms", "atlas")
    assert named(extraction, "VO") == named(extraction, "VirtualOrganisation", LB_JDL)
    assert extraction.user_tags == [("http://example.org/jp:quality", "good")]


def test_escaped_values_reach_the_attributes(tmp_path: Path) -> None:
    extraction = extract(write(tmp_path, generate_job(random.Random(4), "escapes")))
    assert named(extraction, "note", LB_TAG) == ['said "hi"\nand left C:\\temp\\']
    assert named(extraction, "Arguments", LB_JDL) == ['-c "echo a\\b"']


def test_parent_children_and_histogram(tmp_path: Path) -> None:
    collection = generate_collection(random.Random(8), 5)
    lines = collection.dumps[collection.parent_jobid]
    extraction = extract(write(tmp_path, lines))
    assert named(extraction, "childrenNum") == ["5"]
    assert named(extraction, "jobType") == ["COLLECTION"]
    (children,) = named(extraction, "children")
    seed = lines[0].split('DG.REGJOB.SEED="')[1].split('"')[0]
    expected = subjob_ids(collection.parent_jobid, 5, seed)
    assert children.splitlines() == [f"<jobId>{child}</jobId>" for child in expected]
    (hist,) = named(extraction, "childrenHist")
    assert hist.count("<item ") == 11
    assert '<item name="Unknown">0</item>' in hist


def test_bad_scenario_keeps_status_and_flags_it(tmp_path: Path) -> None:
    extraction = extract(write(tmp_path, generate_job(random.Random(4), "lm_failed_while_running")))
    assert named(extraction, "status") == ["Done"]
    assert named(extraction, "doneCode") == ["FAILED"]
    (flag,) = [v for v in extraction.values if v.name == INCONSISTENCY]
    assert flag.value.startswith("lm-failed-while-payload-running: ")


def test_bad_scenario_variant_with_wrapper_done(tmp_path: Path) -> None:
    lines = generate_job(random.Random(4), "lm_failed_then_jobwrapper_done")
    extraction = extract(write(tmp_path, lines))
    assert named(extraction, "doneCode") == ["FAILED"]
    assert named(extraction, "LRMSDoneStatus") == ["OK"]
    (flag,) = named(extraction, "replayInconsistency", JP_PRIMARY)
    assert flag.startswith("jobwrapper-done-contradicts-lm: ")


def test_consistent_job_has_no_flag(tmp_path: Path) -> None:
    extraction = extract(write(tmp_path, generate_job(random.Random(4), "cleared")))
    assert named(extraction, "replayInconsistency", JP_PRIMARY) == []


# -- bad input ------------------------------------------------------------------------------


def test_truncated_line_is_reported_and_the_rest_used(tmp_path: Path) -> None:
    lines = generate_job(random.Random(4), "cleared")
    lines[5] = lines[5][: len(lines[5]) // 2]
    extraction = extract(write(tmp_path, lines))
    assert [error.line for error in extraction.errors] == [6]
    assert named(extraction, "status") == ["Cleared"]


def test_binary_garbage_is_reported_per_line(tmp_path: Path) -> None:
    lines = generate_job(random.Random(4), "done")
    data = ("\n".join(lines[:3]) + "\n").encode()
    data += bytes(b for b in range(256) if b != 10) + b"\n" + b"\xff\xfe\x00garbage\n"
    data += ("\n".join(lines[3:]) + "\n").encode()
    extraction = extract(write(tmp_path, data))
    assert [error.line for error in extraction.errors] == [4, 5]
    assert named(extraction, "status") == ["Done"]


def test_wrong_quoting_names_the_line(tmp_path: Path) -> None:
    lines = generate_job(random.Random(4), "done")
    lines[2] = lines[2].replace('DG.SOURCE="NetworkServer"', 'DG.SOURCE="NetworkServer')
    extraction = extract(write(tmp_path, lines))
    (error,) = extraction.errors
    assert error.line == 3
    assert "quote" in error.message or "KEY=value" in error.message


def test_ten_megabyte_line(tmp_path: Path) -> None:
    lines = generate_job(random.Random(4), "tagged")
    big = "x" * (10 * 1024 * 1024)
    lines.append(lines[-1].replace('VALUE="good"', f'VALUE="{big}"'))
    lines.append("Z" * (10 * 1024 * 1024))
    extraction = extract(write(tmp_path, lines))
    assert [error.line for error in extraction.errors] == [len(lines)]
    assert len(named(extraction, "status")) == 1


def test_mixed_jobs_keep_the_registered_one(tmp_path: Path) -> None:
    first = generate_job(random.Random(4), "done")
    second = generate_job(random.Random(5), "aborted")
    extraction = extract(write(tmp_path, first + second), jobid_of(second))
    assert named(extraction, "status") == ["Aborted"]
    (error,) = extraction.errors
    assert error.line == 1
    assert jobid_of(first) in error.message


def test_dump_of_another_job_gives_no_values(tmp_path: Path) -> None:
    lines = generate_job(random.Random(4), "done")
    extraction = extract(write(tmp_path, lines), "https://lb.example.org:9000/NotInTheDump0000000")
    assert extraction.values == []
    (error,) = extraction.errors
    assert error.message.startswith("the dump holds no event of job https://")


def test_empty_and_blank_files(tmp_path: Path) -> None:
    extraction = extract(write(tmp_path, ["", "   "]))
    assert extraction.values == []
    assert [error.message for error in extraction.errors] == ["the file holds no L&B event"]


def test_job_record_raises_without_events(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no job record"):
        LBPlugin().job_record(write(tmp_path, [""]), "https://x.example:9000/abc")
