"""Transitions the original handled in part: a Done without a done code, a Clear with an unknown
reason. The original changed the state, then hit ``bad_event`` and skipped the rest
(process_event.c, ``goto bad_event``); the replay does the same and reports the event."""

from __future__ import annotations

import random
import subprocess
import sys

from jp_primary.attributes import names
from jp_primary.auth.identity import Role
from jp_primary.plugins.classads import classad_values
from jp_primary.plugins.lb.derive import derive_attributes
from jp_primary.plugins.lb.statemachine import Replay, replay
from jp_primary.plugins.lb.status import DoneCode, State
from jp_primary.testing.lbdumps import generate_job
from tests.helpers import ALICE, LB_HOST, Api, new_jobid, register_job

from .conftest import events_of


def with_field(lines: list[str], event: str, source: str, old: str, new: str) -> list[str]:
    """``lines`` with ``old`` replaced by ``new`` in the last ``event`` line from ``source``."""
    index = max(
        i
        for i, line in enumerate(lines)
        if f'DG.EVNT="{event}"' in line and f'DG.SOURCE="{source}"' in line
    )
    assert old in lines[index]
    return [*lines[:index], lines[index].replace(old, new), *lines[index + 1 :]]


def done_with_code(code: str, *, jobid: str | None = None) -> list[str]:
    lines = generate_job(random.Random(7), "done", jobid=jobid)
    return with_field(lines, "Done", "LogMonitor", 'STATUS_CODE="OK"', f'STATUS_CODE="{code}"')


def check_done_without_code(result: Replay, code: str) -> None:
    done = next(e for e in reversed(result.events) if e.type == "Done" and e.source != "LRMS")
    assert done.get("status_code") == code
    s = result.status
    assert s.state == State.DONE
    assert s.done_code is None
    assert s.exit_code is None  # the JobWrapper's Done sets none; this Done sets none either
    assert s.jw_status == "DONE"
    assert s.location == f"LogMonitor/{done.host}/{done.src_instance or '(null)'}"
    assert [e.state.label for e in result.history][-2:] == ["Running", "Done"]
    # The bookkeeping after the event was skipped: no new update or state-entry time.
    assert s.last_update_time_us is not None
    assert s.last_update_time_us < done.time_us
    assert result.history[-1].time_us == result.history[-2].time_us
    assert State.DONE not in s.state_enter_times
    assert result.verdicts[-1] == "bad"
    assert [line for _, line in result.problems] == [done.line]
    assert result.problems[0][0].startswith("event partly applied: ")
    assert repr(code) in result.problems[0][0]
    derived, _ = derive_attributes(result, classad_values)
    by_name = {value.name: value.value for value in derived}
    assert by_name[f"{names.LB_ATTRIBUTES}:status"] == "Done"
    assert f"{names.LB_ATTRIBUTES}:doneCode" not in by_name
    assert f"{names.LB_ATTRIBUTES}:finalDoneStatus" not in by_name


def test_defect_18_done_killed(api: Api) -> None:
    check_done_without_code(replay(events_of(done_with_code("KILLED"))), "KILLED")

    # The same dump committed through the API (both databases): the job is Done, no doneCode.
    jobid = new_jobid()
    trusted = api.auth(LB_HOST, Role.TRUSTED)
    key = register_job(api, ALICE, jobid=jobid, lb=True)
    dump = "\n".join(done_with_code("KILLED", jobid=jobid)) + "\n"
    url = f"/v1/jobs/{key}/files/urn:org.glite.jp.primary:lb"
    committed = api.client.put(url, content=dump.encode(), headers=trusted)
    assert committed.status_code == 201, committed.text
    values = api.client.get(f"/v1/jobs/{key}/attributes", headers=api.auth(ALICE)).json()["values"]
    by_name = {v["name"]: v["value"] for v in values}
    assert by_name[f"{names.LB_ATTRIBUTES}:status"] == "Done"
    assert f"{names.LB_ATTRIBUTES}:doneCode" not in by_name
    assert any("KILLED" in str(error) for error in committed.json()["extraction"]["errors"])


def test_defect_18_done_code_outside_the_enum_is_handled_as_killed() -> None:
    # The original read an unknown code as UNDEFINED, which took the same branch as KILLED.
    check_done_without_code(replay(events_of(done_with_code("EXPLODED"))), "EXPLODED")


def test_defect_18_known_done_codes_still_set_the_done_code() -> None:
    for code, expected in (("OK", DoneCode.OK), ("FAILED", DoneCode.FAILED)):
        result = replay(events_of(done_with_code(code)))
        assert result.status.state == State.DONE
        assert result.status.done_code == expected
        assert result.problems == []
    cancelled = replay(events_of(done_with_code("CANCELLED")))
    assert cancelled.status.state == State.CANCELLED
    assert cancelled.status.done_code == DoneCode.CANCELLED


def test_defect_18_late_killed_done_changes_nothing() -> None:
    lines = generate_job(random.Random(7), "aborted")
    aborted = replay(events_of(lines))
    # A LogMonitor Done KILLED after the Abort (a higher LM counter): late, as the job is Aborted.
    abort = lines[-1]
    assert 'DG.EVNT="Abort"' in abort
    assert ":LM=000000:" in abort
    done = (
        abort.replace('DG.EVNT="Abort"', 'DG.EVNT="Done"')
        .replace('DG.SOURCE="WorkloadManager"', 'DG.SOURCE="LogMonitor"')
        .replace(":LM=000000:", ":LM=000001:")
        .replace("DG.ABORT.REASON=", 'DG.DONE.STATUS_CODE="KILLED" DG.DONE.REASON=')
    )
    result = replay(events_of([*lines, done]))
    assert result.events[-1].type == "Done"
    assert result.status == aborted.status
    assert result.history == aborted.history
    assert result.problems == [
        ("event ignored: Done status code 'KILLED' gives no done code", len(lines) + 1)
    ]


def test_clear_with_an_unknown_reason_clears_the_job_as_the_original_did() -> None:
    lines = with_field(
        generate_job(random.Random(7), "cleared"),
        "Clear",
        "NetworkServer",
        'REASON="USER"',
        'REASON="LOST"',
    )
    result = replay(events_of(lines))
    assert result.status.state == State.CLEARED
    assert result.status.location == "none"
    assert result.status.remove_from_proxy is True
    assert result.status.sandbox_retrieved is None
    assert result.status.reason != "user retrieved output sandbox"
    assert [e.state.label for e in result.history][-2:] == ["Done", "Cleared"]
    assert result.problems[0][0].startswith("event partly applied: unexpected Clear reason")


def test_transitions_do_not_import_the_state_machine() -> None:
    # The transitions and the machine share steps.py; the transitions never import the machine.
    code = (
        "import sys, jp_primary.plugins.lb.transitions;"
        " print('jp_primary.plugins.lb.statemachine' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"
