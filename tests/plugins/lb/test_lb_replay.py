"""Replays of generated dumps: every scenario reaches its expected state, in any line order."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jp_primary.plugins.lb.consistency import find_inconsistency
from jp_primary.plugins.lb.history import final_entry
from jp_primary.plugins.lb.jobids import subjob_ids
from jp_primary.plugins.lb.statemachine import Replay, replay
from jp_primary.plugins.lb.status import DoneCode, State
from jp_primary.testing.lbdumps import SCENARIOS, generate_collection, generate_job

from .conftest import events_of

S, W, R, SC, RU, D, C = "Submitted", "Waiting", "Ready", "Scheduled", "Running", "Done", "Cleared"
FIRST_CYCLE = [S, W, R, RU, D]
# scenario: (final state, done code, status history)
EXPECTED: dict[str, tuple[str, DoneCode | None, list[str]]] = {
    "done": (D, DoneCode.OK, FIRST_CYCLE),
    "cleared": (C, DoneCode.OK, [*FIRST_CYCLE, C]),
    "aborted": ("Aborted", None, [S, W, "Aborted"]),
    "cancelled": ("Cancelled", DoneCode.CANCELLED, [S, W, R, SC, "Cancelled"]),
    "shallow_resubmission": (D, DoneCode.OK, [*FIRST_CYCLE, W, R, RU, D]),
    "deep_resubmission": (C, DoneCode.OK, [*FIRST_CYCLE, W, R, RU, D, C]),
    "lm_failed_while_running": (D, DoneCode.FAILED, FIRST_CYCLE),
    "lm_failed_then_jobwrapper_done": (D, DoneCode.FAILED, FIRST_CYCLE),
    "tagged": (D, DoneCode.OK, FIRST_CYCLE),
    "escapes": (D, DoneCode.OK, FIRST_CYCLE),
    "old_seqcodes": (C, DoneCode.OK, [*FIRST_CYCLE, C]),
    "arrived_prefix": (C, DoneCode.OK, [*FIRST_CYCLE, C]),
    "dag_parent": (D, DoneCode.OK, [S, W, RU, D]),
    "collection_parent": (D, DoneCode.OK, [S, W, RU, D]),
}


def run(scenario: str, seed: int = 7) -> Replay:
    return replay(events_of(generate_job(random.Random(seed), scenario)))


def test_every_scenario_has_an_expectation() -> None:
    assert set(EXPECTED) == set(SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_scenario_replays_to_expected_state(scenario: str, seed: int) -> None:
    result = run(scenario, seed)
    state, done_code, history = EXPECTED[scenario]
    assert result.status.state.label == state
    assert result.status.done_code == done_code
    assert [entry.state.label for entry in result.history] == history
    assert result.problems == []


def test_cleared_job_keeps_done_as_final_status() -> None:
    final = final_entry(run("cleared").history)
    assert final is not None
    assert final.state == State.DONE


def test_shallow_resubmission_takes_destination_of_the_running_branch() -> None:
    result = run("shallow_resubmission")
    matches = [e.get("dest_id") for e in result.events if e.type == "Match"]
    assert len(matches) == 2
    assert matches[0] != matches[1]
    assert result.status.destination == matches[1]
    assert result.status.ce_node == f"gt2 {matches[1]}"
    assert result.status.resubmitted  # the LogMonitor enqueued it again
    assert result.status.possible_destinations == matches


def test_deep_resubmission_records_the_failure_with_the_old_destination() -> None:
    result = run("deep_resubmission")
    first, second = [e.get("dest_id") for e in result.events if e.type == "Match"]
    assert result.status.destination == second
    assert result.status.failure_reasons == (
        f"Job got an error while in the CondorG queue. [{first}]"
    )
    # The WM's WILLRESUB reset the branches: only the new cycle's candidates remain.
    assert result.status.possible_destinations == [second]


def test_really_running_from_log_monitor_uses_wn_seq() -> None:
    result = run("done")
    lm_really = [e for e in result.events if e.type == "ReallyRunning" and e.source == "LogMonitor"]
    wrapper = [e for e in result.events if e.type == "ReallyRunning" and e.source == "LRMS"]
    assert len(lm_really) == 1
    assert len(wrapper) == 1
    assert lm_really[0].get("wn_seq") is not None
    assert result.status.payload_running is False  # the LM Done on the good branch ended it


def test_lrms_done_does_not_change_the_state() -> None:
    lines = generate_job(random.Random(3), "done")
    without_lm_done = [
        line for line in lines if not ('"LogMonitor"' in line and 'DG.EVNT="Done"' in line)
    ]
    result = replay(events_of(without_lm_done))
    assert result.status.state == State.RUNNING
    wrapper_done = [
        verdict
        for event, verdict in zip(result.events, result.verdicts, strict=True)
        if event.type == "Done" and event.source == "LRMS"
    ]
    assert wrapper_done == ["ok/goodbranch"]  # accepted, yet the job is not Done


def test_cancel_request_sets_cancelling_only() -> None:
    lines = generate_job(random.Random(3), "cancelled")
    request_only = [line for line in lines if 'DG.CANCEL.STATUS_CODE="DONE"' not in line]
    request_only = [line for line in request_only if "CANCELLED" not in line]
    result = replay(events_of(request_only))
    assert result.status.state == State.SCHEDULED
    assert result.status.cancelling is True


def test_user_tags_later_seqcode_wins_case_insensitively() -> None:
    tags = run("tagged").status.user_tags
    assert tags["color"][:2] == ("color", "green")
    assert tags["http://example.org/jp:quality"][1] == "good"


def test_escaped_values_survive_the_round_trip() -> None:
    result = run("escapes")
    assert result.status.user_tags["note"][1] == 'said "hi"\nand left C:\\temp\\'
    assert result.status.jdl is not None
    assert '"-c \\"echo a\\\\b\\""' in result.status.jdl


def test_bad_scenario_is_replayed_faithfully_and_flagged() -> None:
    result = run("lm_failed_while_running")
    assert result.status.state == State.DONE
    assert result.status.done_code == DoneCode.FAILED
    inconsistency = find_inconsistency(result)
    assert inconsistency is not None
    assert inconsistency.kind == "lm-failed-while-payload-running"
    assert "never reported it Done" in inconsistency.description


def test_bad_scenario_with_late_jobwrapper_done_says_so() -> None:
    result = run("lm_failed_then_jobwrapper_done")
    assert result.status.state == State.DONE
    assert result.status.done_code == DoneCode.FAILED  # still the LogMonitor's verdict
    inconsistency = find_inconsistency(result)
    assert inconsistency is not None
    assert inconsistency.kind == "jobwrapper-done-contradicts-lm"
    assert "JobWrapper reported Done OK (exit code 0)" in inconsistency.description


def test_agreeing_failure_is_not_flagged() -> None:
    lines = generate_job(random.Random(5), "lm_failed_then_jobwrapper_done")
    agreeing = [
        line.replace('STATUS_CODE="OK"', 'STATUS_CODE="FAILED"')
        if '"LRMS"' in line and 'DG.EVNT="Done"' in line
        else line
        for line in lines
    ]
    assert agreeing != lines
    assert find_inconsistency(replay(events_of(agreeing))) is None


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if not s.startswith("lm_failed")])
def test_normal_scenarios_are_not_flagged(scenario: str) -> None:
    assert find_inconsistency(run(scenario)) is None


def test_collection_children_match_parent() -> None:
    collection = generate_collection(random.Random(11), 12)
    parent = replay(events_of(collection.dumps[collection.parent_jobid]))
    assert parent.status.children_num == 12
    children = subjob_ids(collection.parent_jobid, 12, parent.status.seed)
    assert set(children) == set(collection.dumps) - {collection.parent_jobid}
    counts: dict[State, int] = {}
    for child in children:
        child_result = replay(events_of(collection.dumps[child]))
        assert child_result.status.parent_job == collection.parent_jobid
        counts[child_result.status.state] = counts.get(child_result.status.state, 0) + 1
    assert {state: n for state, n in parent.status.children_hist.items() if n} == counts


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(SCENARIOS), st.integers(0, 2**32), st.randoms(use_true_random=False))
def test_replay_is_independent_of_line_order(
    scenario: str, seed: int, shuffler: random.Random
) -> None:
    lines = generate_job(random.Random(seed), scenario)
    shuffled = list(lines)
    shuffler.shuffle(shuffled)
    ordered, mixed = replay(events_of(lines)), replay(events_of(shuffled))
    assert mixed.status == ordered.status
    assert mixed.history == ordered.history
