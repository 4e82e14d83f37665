"""The dump generator: deterministic, valid, sized as asked."""

from __future__ import annotations

import random

import pytest

from jp_primary.plugins.lb.dump import parse_dump
from jp_primary.plugins.lb.jobids import md5_base64, subjob_ids, unique_part
from jp_primary.testing.lbdumps import SCENARIOS, generate_job, generate_workload


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_same_seed_same_dump(scenario: str) -> None:
    first = generate_job(random.Random(99), scenario)
    assert first == generate_job(random.Random(99), scenario)
    assert first != generate_job(random.Random(100), scenario)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_line_parses(scenario: str) -> None:
    lines = generate_job(random.Random(1), scenario)
    parsed = parse_dump(lines)
    assert parsed.problems == []
    assert len(parsed.events) == len(lines)
    assert len({unique_part(event.jobid) for event in parsed.events}) == 1


def test_format_variants() -> None:
    old = generate_job(random.Random(1), "old_seqcodes")
    assert all(":LBS=" not in line for line in old)
    arrived = generate_job(random.Random(1), "arrived_prefix")
    assert all(line.startswith("DG.ARRIVED=") for line in arrived)


def test_workload_has_the_asked_size() -> None:
    dumps = generate_workload(random.Random(3), 5_000, 100)
    assert len(dumps) == 100
    assert sum(len(lines) for lines in dumps) == 5_000
    assert dumps == generate_workload(random.Random(3), 5_000, 100)


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown scenario"):
        generate_job(random.Random(1), "nonsense")


def test_subjob_ids_are_md5_base64_of_parent_seed_index() -> None:
    ids = subjob_ids("https://lb.example.org:9000/Whjdxb1SDDMUkWiB9xJUGw", 3, "WMPROXY")
    assert ids[1] == "https://lb.example.org:9000/" + md5_base64("Whjdxb1SDDMUkWiB9xJUGw,WMPROXY,1")
    assert all(len(unique_part(jobid)) == 22 for jobid in ids)
    unseeded = subjob_ids("https://lb.example.org:9000/abc", 1, None)
    assert unseeded[0].endswith(md5_base64("abc,edg_wll_GenerateSubjobIds(),0"))
