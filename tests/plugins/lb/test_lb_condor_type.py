"""The native L&B Condor job type: a dump of a job registered as CONDOR, with Condor-type
sequence codes, replayed by its own state machine (docs/condor.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from jp_primary.plugins.base import ExtractContext
from jp_primary.plugins.lb.dump import parse_dump
from jp_primary.plugins.lb.plugin import LBPlugin
from jp_primary.plugins.lb.seqcode import SeqCodeError, parse_condor_seqcode
from jp_primary.plugins.lb.statemachine import Replay, StateMachine, replay
from jp_primary.plugins.lb.status import State
from jp_primary.plugins.lb.ulm import format_line

JOBID = "https://lb.example.org:9000/condorNative1"


def line(event: str, second: int, position: int, src: str, **fields: str) -> str:
    stamp = f"20240301100{second // 60}{second % 60:02d}"
    seq = f"TIMESTAMP={stamp}:POS={position:010d}:EV.CODE=000:SRC={src}"
    pairs = [
        ("DATE", f"{stamp}.000000", False),
        ("HOST", "submit.example.org", True),
        ("PROG", "edg-wms", False),
        ("LVL", "SYSTEM", False),
        ("DG.PRIORITY", "0", False),
        ("DG.SOURCE", "LRMS", True),
        ("DG.SRC_INSTANCE", "", True),
        ("DG.EVNT", event, True),
        ("DG.JOBID", JOBID, True),
        ("DG.SEQCODE", seq, True),
        ("DG.USER", "/CN=Condor User", True),
    ]
    pairs += [(f"DG.{event.upper()}.{k.upper()}", v, True) for k, v in fields.items()]
    return format_line(pairs)


def regjob(second: int = 0) -> str:
    return line("RegJob", second, 0, "C", jdl="[]", ns="submit.example.org", jobtype="CONDOR")


def run(*lines: str) -> Replay:
    parsed = parse_dump(lines)
    assert parsed.problems == []
    return replay(parsed.events)


def states(result: Replay) -> list[State]:
    return [entry.state for entry in result.history]


def test_regjob_is_submitted_and_idle() -> None:
    result = run(regjob())
    assert result.status.state == State.SUBMITTED
    assert result.status.condor["status"] == "Idle"
    assert result.status.jobtype == "CONDOR"


def test_a_full_run() -> None:
    result = run(
        regjob(),
        line("CondorMatch", 10, 5, "m", owner="u", dest_host="worker1", preempting=""),
        line("CondorShadowStarted", 20, 7, "C", shadow_pid="101", shadow_host="s"),
        line("CondorStarterStarted", 30, 3, "S", starter_pid="0", universe=""),
        line("CondorStarterStarted", 31, 4, "s", starter_pid="202", universe="vanilla"),
        line(
            "CondorStarterExited", 50, 9, "s", starter_pid="202", job_pid="303", job_exit_status="0"
        ),  # fmt: skip
        line("CondorShadowExited", 55, 8, "H", shadow_pid="101", shadow_exit_status="100"),
    )
    assert result.problems == []
    assert states(result) == [
        State.SUBMITTED,
        State.READY,
        State.SCHEDULED,
        State.RUNNING,
        State.DONE,
    ]
    condor = result.status.condor
    assert condor["status"] == "Completed"
    assert condor["destHost"] == "worker1"
    assert (condor["universe"], condor["starterPid"], condor["jobPid"]) == ("vanilla", "202", "303")
    assert condor["shadowPid"] == "101"
    assert condor["shadowExitStatus"] == "100"
    assert result.status.location == "this is CONDOR"


def test_reject_nomatch_is_aborted() -> None:
    result = run(regjob(), line("CondorReject", 10, 1, "N", owner="u", status_code="NOMATCH"))
    assert result.status.state == State.ABORTED
    assert result.status.condor["status"] == "Unexpanded"
    assert result.status.reason == "No match found."


def test_resource_usage_and_error_change_nothing() -> None:
    result = run(
        regjob(),
        line("CondorResourceUsage", 10, 1, "s", resource="cpu", quantity="1", unit="s"),
        line("CondorError", 20, 2, "s", source="x", message="boom"),
    )
    assert states(result) == [State.SUBMITTED]
    assert result.verdicts == ["ok", "ok", "ok"]


def test_a_late_event_changes_data_but_not_the_state() -> None:
    # The replay sorts, so lateness shows when the machine is fed out of order itself.
    events = parse_dump(
        [
            regjob(),
            line("CondorShadowExited", 30, 8, "H", shadow_pid="1", shadow_exit_status="0"),
            line("CondorMatch", 20, 2, "m", owner="u", dest_host="late-host", preempting=""),
        ]
    ).events
    machine = StateMachine()
    for event in events:
        machine.feed(event)
    assert machine.verdicts == ["ok", "ok", "late"]
    assert machine.status.state == State.DONE
    assert machine.status.condor["destHost"] == "late-host"  # data is still taken


def test_sorting_puts_the_match_log_last_at_equal_times() -> None:
    result = run(
        regjob(),
        line("CondorMatch", 30, 2, "m", owner="u", dest_host="w", preempting=""),
        line("CondorShadowExited", 30, 8, "H", shadow_pid="1", shadow_exit_status="0"),
    )
    assert result.status.state == State.READY


def test_regjob_sorts_first_whatever_its_time() -> None:
    result = run(
        line("CondorMatch", 10, 5, "m", owner="u", dest_host="w", preempting=""),
        regjob(second=50),
    )
    assert states(result) == [State.SUBMITTED, State.READY]


def test_glite_events_in_a_condor_job_are_reported() -> None:
    glite = line("Running", 20, 1, "s", node="w")
    result = run(regjob(), glite)
    assert result.status.state == State.SUBMITTED
    assert result.problems == [("event ignored: Running is not an event of the Condor job type", 2)]


def test_the_plugin_derives_values_for_a_condor_job(tmp_path: Path) -> None:
    dump = tmp_path / "condor.lb"
    dump.write_text(
        "\n".join(
            [
                regjob(),
                line("CondorMatch", 10, 5, "m", owner="u", dest_host="worker1", preempting=""),
                line("CondorStarterStarted", 31, 4, "s", starter_pid="2", universe="vanilla"),
            ]
        )
        + "\n"
    )
    context = ExtractContext(JOBID, "condorNative1", "lb", "", datetime(2025, 1, 1, tzinfo=UTC))
    extraction = LBPlugin().extract(dump, context)
    values = {v.name.rsplit(":", 1)[1]: v.value for v in extraction.values}
    assert values["status"] == "Running"
    assert values["jobType"] == "CONDOR"
    assert extraction.job_record is not None


@pytest.mark.parametrize(
    "text", ["TIMESTAMP=2024:POS=1:EV.CODE=1:SRC=C", "TIMESTAMP=20240301100000:POS=x"]
)
def test_bad_condor_seqcodes(text: str) -> None:
    with pytest.raises(SeqCodeError):
        parse_condor_seqcode(text)
