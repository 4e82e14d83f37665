"""Fixtures for the L&B plugin tests: the real L&B dumps and small helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from jp_primary.plugins.lb.dump import parse_dump
from jp_primary.plugins.lb.events import Event
from tests.helpers import shared_data_or_skip

# One Done event's fields up to the Done-specific ones (ULM and seqcode tests add to it).
HEADER = (
    'DATE=20080928054721.553524 HOST="wms.example.org" PROG=edg-wms LVL=SYSTEM DG.PRIORITY=0 '
    'DG.SOURCE="LogMonitor" DG.SRC_INSTANCE="" DG.EVNT="Done" '
    'DG.JOBID="https://lb.example.org:9000/Xq3mTz8pLw2Kc7Rb5Nd1Ha" '
    'DG.SEQCODE="UI=000000:NS=0000000004:WM=000005:BH=0000000000:JSS=000003:LM=000008:'
    'LRMS=000000:APP=000000:LBS=000000" DG.USER="/O=Example/CN=User"'
)


@pytest.fixture(scope="session")
def real_dumps() -> Path:
    """The directory of real L&B dumps (``<repo root>/../shared/data/lb``): skips when missing,
    fails instead under ``JP_REQUIRE_SHARED_DATA=1``."""
    return shared_data_or_skip("data", "lb", pattern="*.lb")


def with_jobid(lines: list[str], jobid: str) -> list[str]:
    """Template dumps carry no DG.JOBID (the perf test inserted one per run): add it."""
    return [f'{line} DG.JOBID="{jobid}"' if line.strip() else line for line in lines]


def events_of(lines: list[str]) -> list[Event]:
    parsed = parse_dump(lines)
    assert parsed.problems == [], parsed.problems
    return parsed.events
