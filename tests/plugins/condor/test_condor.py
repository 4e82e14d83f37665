from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jp_primary.plugins.base import ExtractContext, Extraction
from jp_primary.plugins.condor.plugin import CondorLogPlugin
from jp_primary.plugins.condor.summary import host_of

NS = "http://jp-primary/Schema/Condor"
COMMITTED = datetime(2025, 1, 1, tzinfo=UTC)
CONTEXT = ExtractContext(
    jobid="condor://submit.example.org/1234.0",
    key="k",
    file_class="condor-log",
    file_name="",
    committed_at=COMMITTED,
)

SUBMIT = (
    "000 (1234.000.000) 2024-03-01 10:00:00 Job submitted from host: "
    "<192.168.1.10:9618?addrs=192.168.1.10-9618&alias=submit.example.org&noUDP&sock=schedd_1>\n"
    "...\n"
)
EXECUTE = (
    "001 (1234.000.000) 2024-03-01 10:01:05 Job executing on host: "
    "<192.168.1.20:9618?addrs=192.168.1.20-9618&alias=worker1.example.org&noUDP&sock=startd_9>\n"
    "\tSlotName: slot1@worker1.example.org\n"
    '\tCondorScratchDir = "/var/lib/condor/execute/dir_12345"\n'
    "\tCpus = 1\n"
    "\tMemory = 2048\n"
    "...\n"
)
IMAGE_SIZE = (
    "006 (1234.000.000) 2024-03-01 10:02:00 Image size of job updated: 1000\n"
    "\t1  -  MemoryUsage of job (MB)\n"
    "\t900  -  ResidentSetSize of job (KB)\n"
    "...\n"
)
USAGE = (
    "\t\tUsr 0 00:00:01, Sys 0 00:00:00  -  Run Remote Usage\n"
    "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Local Usage\n"
    "\t\tUsr 0 00:00:01, Sys 0 00:00:00  -  Total Remote Usage\n"
    "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Total Local Usage\n"
    "\t120  -  Run Bytes Sent By Job\n"
    "\t4000  -  Run Bytes Received By Job\n"
    "\t120  -  Total Bytes Sent By Job\n"
    "\t4000  -  Total Bytes Received By Job\n"
)
TERMINATED = (
    "005 (1234.000.000) 2024-03-01 10:05:30 Job terminated.\n"
    "\t(1) Normal termination (return value 3)\n" + USAGE + "...\n"
)
KILLED = (
    "005 (1234.000.000) 2024-03-01 10:05:30 Job terminated.\n"
    "\t(0) Abnormal termination (signal 9)\n"
    "\t(0) No core file\n" + USAGE + "...\n"
)
HELD = (
    "012 (1234.000.000) 2024-03-01 10:03:00 Job was held.\n"
    "\tError from slot1@worker1.example.org: out of disk\n"
    "\tCode 12 Subcode 28\n"
    "...\n"
)
RELEASED = (
    "013 (1234.000.000) 2024-03-01 10:04:00 Job was released.\n"
    "\tvia condor_release (by user alice)\n"
    "...\n"
)
ABORTED = (
    "009 (1234.000.000) 2024-03-01 10:06:00 Job was aborted.\n"
    "\tvia condor_rm (by user alice)\n"
    "...\n"
)


def local(*fields: int) -> datetime:
    """A user-log time: written in the reader's local zone, without a zone of its own."""
    return datetime.fromtimestamp(time.mktime((*fields, 0, 0, -1)), UTC)  # type: ignore[arg-type]


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def extract(tmp_path: Path, text: str) -> Extraction:
    path = tmp_path / "job.log"
    path.write_text(text)
    return CondorLogPlugin().extract(path, CONTEXT)


def single(extraction: Extraction) -> dict[str, str]:
    found: dict[str, str] = {}
    for value in extraction.values:
        if not value.name.startswith(NS + ":"):
            continue  # the L&B values (test_condor_lb.py)
        local_name = value.name[len(NS) + 1 :]
        assert local_name not in found, f"{local_name} has several values"
        found[local_name] = value.value
    return found


def test_normally_terminated_job(tmp_path: Path) -> None:
    extraction = extract(tmp_path, SUBMIT + EXECUTE + IMAGE_SIZE + TERMINATED)
    assert extraction.errors == []
    submitted = local(2024, 3, 1, 10, 0, 0)
    started = local(2024, 3, 1, 10, 1, 5)
    ended = local(2024, 3, 1, 10, 5, 30)
    assert single(extraction) == {
        "jobs": "1234.0",
        "jobId": "1234.0",
        "cluster": "1234",
        "proc": "0",
        "submitTime": iso(submitted),
        "submitHost": "submit.example.org",
        "submitAddress": (
            "<192.168.1.10:9618?addrs=192.168.1.10-9618&alias=submit.example.org"
            "&noUDP&sock=schedd_1>"
        ),
        "executeTime": iso(started),
        "executeHost": "worker1.example.org",
        "executeAddress": (
            "<192.168.1.20:9618?addrs=192.168.1.20-9618&alias=worker1.example.org"
            "&noUDP&sock=startd_9>"
        ),
        "slotName": "slot1@worker1.example.org",
        "terminateTime": iso(ended),
        "terminatedNormally": "true",
        "returnValue": "3",
        "eventCount": "4",
        "finalStatus": "Completed",
        "finalStatusTime": iso(ended),
    }
    stamps = {v.name[len(NS) + 1 :]: v.timestamp for v in extraction.values if NS in v.name}
    assert stamps["jobId"] == submitted
    assert stamps["executeHost"] == started
    assert stamps["finalStatus"] == ended
    assert stamps["eventCount"] == ended


def test_held_released_then_killed_by_signal(tmp_path: Path) -> None:
    again = EXECUTE.replace("10:01:05", "10:04:30")
    extraction = extract(tmp_path, SUBMIT + EXECUTE + HELD + RELEASED + again + KILLED)
    assert extraction.errors == []
    by_name: dict[str, list[str]] = {}
    for value in extraction.values:
        if NS not in value.name:
            continue
        by_name.setdefault(value.name[len(NS) + 1 :], []).append(value.value)
    assert by_name["executeHost"] == ["worker1.example.org", "worker1.example.org"]
    assert by_name["holdReason"] == ["Error from slot1@worker1.example.org: out of disk"]
    assert by_name["holdReasonCode"] == ["12"]
    assert by_name["holdSubCode"] == ["28"]
    assert by_name["terminatedNormally"] == ["false"]
    assert by_name["terminatedBySignal"] == ["9"]
    assert "returnValue" not in by_name
    assert by_name["finalStatus"] == ["Completed"]
    assert by_name["eventCount"] == ["6"]


def test_job_still_held_at_the_end(tmp_path: Path) -> None:
    values = single(extract(tmp_path, SUBMIT + EXECUTE + HELD))
    assert values["finalStatus"] == "Held"
    assert values["finalStatusTime"] == iso(local(2024, 3, 1, 10, 3, 0))
    assert "terminateTime" not in values


def test_aborted_job(tmp_path: Path) -> None:
    values = single(extract(tmp_path, SUBMIT + ABORTED))
    assert values["finalStatus"] == "Removed"
    assert values["abortReason"] == "via condor_rm (by user alice)"
    assert values["abortTime"] == iso(local(2024, 3, 1, 10, 6, 0))
    assert values["eventCount"] == "2"


def test_events_of_other_jobs_are_left_out_when_the_jobid_names_one(tmp_path: Path) -> None:
    other = SUBMIT.replace("1234.000.000", "1235.002.000")
    extraction = extract(tmp_path, SUBMIT + other + TERMINATED)
    values = single(extraction)
    assert values["jobId"] == "1234.0"
    assert values["eventCount"] == "2"
    [problem] = extraction.errors
    assert "other jobs (1235.2)" in problem.message
    assert "only job 1234.0 is detailed" in problem.message


def test_truncated_log_keeps_what_was_read(tmp_path: Path) -> None:
    text = SUBMIT + EXECUTE + IMAGE_SIZE + TERMINATED
    extraction = extract(tmp_path, text[: len(text) - 300])
    values = single(extraction)
    assert values["finalStatus"] == "Running"
    assert values["eventCount"] == "3"
    [problem] = extraction.errors
    assert problem.message == "1 of 4 events could not be read (truncated or corrupt log)"


def test_corrupt_line_in_the_middle_is_reported(tmp_path: Path) -> None:
    extraction = extract(tmp_path, SUBMIT + "garbage that is no event\n...\n" + TERMINATED)
    assert single(extraction)["eventCount"] == "1"
    [problem] = extraction.errors
    assert "1 of 2 events could not be read" in problem.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the user log is empty"),
        ("hello world\nthis is no user log\n", "no HTCondor user-log events found"),
        (SUBMIT[:60], "1 of 1 events could not be read (truncated or corrupt log)"),
    ],
)
def test_unusable_logs_are_a_problem(tmp_path: Path, text: str, message: str) -> None:
    extraction = extract(tmp_path, text)
    assert extraction.values == []
    assert [problem.message for problem in extraction.errors] == [message]


@pytest.mark.parametrize(
    ("sinful", "host"),
    [
        (
            "<192.168.1.20:9618?addrs=192.168.1.20-9618&alias=w1.example.org&noUDP>",
            "w1.example.org",
        ),
        ("<10.0.0.2:9618?addrs=10.0.0.2-9618&noUDP>", "10.0.0.2"),
        ("<10.0.0.2:9618>", "10.0.0.2"),
        ("<[2001:db8::1]:9618?noUDP>", "2001:db8::1"),
        ("submit.example.org", "submit.example.org"),
    ],
)
def test_host_of_sinful_addresses(sinful: str, host: str) -> None:
    assert host_of(sinful) == host
