"""POST /v1/query on the index: the primary's conditions (decided by the attribute library),
primary_storage per job, owner isolation, the indexed-attribute rule, paging."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest

from jp_primary.attributes.conditions import Condition, matches
from jp_primary.attributes.names import expand
from jp_primary.auth.identity import Role
from jp_primary.index import planner
from jp_primary.index.query import QueryRequest
from jp_primary.index.typelib import build_types
from tests.helpers import ALICE, BOB, new_jobid
from tests.index.conftest import IndexApi

ADMIN = "/CN=index admin"
STATES = ["Submitted", "Waiting", "Ready", "Scheduled", "Running", "Done", "Aborted", "Cleared"]


def _value(name: str, text: str, seq: int, origin: str = "FILE") -> dict[str, Any]:
    return {"name": name, "value": text, "origin": origin, "timestamp": None, "seq": seq}


def _load(index: IndexApi, jobs: int = 60) -> list[dict[str, Any]]:
    """Jobs spread over the two feeds (two primaries), with random values."""
    rng = random.Random(7)
    index.subscribed("alpha")
    index.subscribed("beta")
    records: dict[str, list[dict[str, Any]]] = {"alpha": [], "beta": []}
    seq = 0
    for n in range(jobs):
        values = []
        for _ in range(rng.randint(0, 3)):
            seq += 1
            values.append(_value("lb:status", rng.choice(STATES), seq))
        seq += 1
        values.append(
            _value("jp:regtime", f"2026-01-{rng.randint(1, 28):02d}T10:00:00Z", seq, "SYSTEM")
        )
        if rng.random() < 0.5:
            seq += 1
            values.append(
                _value("tag:color", rng.choice(["red", "green", "blue", "rosé"]), seq, "USER")
            )
        record = {"jobid": new_jobid(), "owner": ALICE if n % 3 else BOB, "values": values}
        records["alpha" if n % 2 else "beta"].append(record)
    assert index.push("alpha", 1, records["alpha"]).status_code == 200
    assert index.push("beta", 1, records["beta"]).status_code == 200
    return records["alpha"] + records["beta"]


def _oracle(
    records: list[dict[str, Any]], where: list[dict[str, Any]], owner: str | None
) -> set[str]:
    compiled = build_types().compile(
        [Condition(**{**c, "values": tuple(c["values"]) if "values" in c else None}) for c in where]
    )
    from jp_primary.attributes.names import expand

    found = set()
    for r in records:
        if owner is not None and r["owner"] != owner:
            continue
        by_name: dict[str, list[tuple[str, str]]] = {}
        for v in r["values"]:
            by_name.setdefault(expand(v["name"]), []).append((v["value"], v["origin"]))
        by_name[expand("jp:owner")] = [(r["owner"], "SYSTEM")]
        by_name[expand("jp:jobId")] = [(r["jobid"], "SYSTEM")]
        if matches(compiled, by_name):
            found.add(r["jobid"])
    return found


def _all(index: IndexApi, subject: str, *roles: Role, **body: Any) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    after = None
    while True:
        response = index.query(subject, *roles, **body, **({"after": after} if after else {}))
        assert response.status_code == 200, response.text
        page = response.json()
        jobs += page["jobs"]
        if page["next"] is None:
            return jobs
        after = page["next"]


QUERIES = [
    [{"attr": "lb:status", "op": "eq", "value": "Done"}],
    [{"attr": "lb:status", "op": "gt", "value": "Running"}],
    [{"attr": "lb:status", "op": "within", "value": "Waiting", "value2": "Running"}],
    [
        {"attr": "lb:status", "op": "in", "values": ["Aborted", "Cleared"]},
        {"attr": "tag:color", "op": "exists"},
    ],
    [
        {"attr": "jp:regtime", "op": "lt", "value": "2026-01-10T00:00:00Z"},
        {"attr": "lb:status", "op": "ne", "value": "Done"},
    ],
    [{"attr": "lb:status", "op": "exists"}, {"attr": "tag:color", "op": "prefix", "value": "ro"}],
    [{"attr": "jp:regtime", "op": "gt", "value": "2026-01-20T00:00:00Z", "origin": "SYSTEM"}],
    [{"attr": "jp:regtime", "op": "gt", "value": "2026-01-20T00:00:00Z", "origin": "USER"}],
    [{"attr": "jp:owner", "op": "eq", "value": BOB}, {"attr": "lb:status", "op": "exists"}],
    [
        {"attr": "lb:status", "op": "eq", "value": "Done"},
        {"attr": "jp:regtime", "op": "within", "value": "2026-01-05", "value2": "2026-01-20"},
    ],
    [
        {"attr": "jp:regtime", "op": "gt", "value": "2026-01-15T00:00:00Z"},
        {"attr": "lb:status", "op": "in", "values": ["Done", "Running"]},
        {"attr": "tag:color", "op": "exists"},
    ],
    # jobid conditions: walked from the jobs they name when narrowest, else probed per job.
    [{"attr": "jp:jobId", "op": "prefix", "value": "https://lb.example.org:9000/A"}],
    [
        {"attr": "jp:jobId", "op": "prefix", "value": "https://lb.example.org:9000/"},
        {"attr": "lb:status", "op": "eq", "value": "Done"},
    ],
]


@pytest.mark.parametrize("where", QUERIES)
def test_answers_are_what_the_library_decides(index: IndexApi, where: list[dict[str, Any]]) -> None:
    records = _load(index)
    everything = _all(index, ADMIN, Role.ADMIN, where=where, limit=7)
    assert {j["jobid"] for j in everything} == _oracle(records, where, None)
    assert len(everything) == len({j["jobid"] for j in everything})  # no job twice across pages
    mine = _all(index, ALICE, where=where, limit=7)
    assert {j["jobid"] for j in mine} == _oracle(records, where, ALICE)


def test_jobs_carry_their_primary_storage_and_selected_values(index: IndexApi) -> None:
    records = _load(index, jobs=10)
    jobs = _all(
        index,
        ADMIN,
        Role.ADMIN,
        where=[{"attr": "jp:regtime", "op": "exists"}],
        select=["lb:status"],
    )
    assert len(jobs) == 10
    sources = {
        r["jobid"]: (
            "http://primary-a.example.org:8901" if i < 5 else "http://primary-b.example.org:8901"
        )
        for i, r in enumerate(records)
    }
    for job in jobs:
        assert job["primary_storage"] == sources[job["jobid"]]
        assert job["key"] == job["jobid"].rpartition("/")[2]
        assert all(v["name"].endswith(":status") for v in job["values"])
    latest = _all(
        index,
        ADMIN,
        Role.ADMIN,
        where=[{"attr": "jp:regtime", "op": "exists"}],
        select=["lb:status"],
        latest=True,
    )
    for job in latest:
        names = [v["name"] for v in job["values"]]
        assert len(names) == len(set(names))


def test_a_query_without_an_indexed_attribute_needs_a_small_limit(index: IndexApi) -> None:
    _load(index)
    where = [{"attr": "tag:color", "op": "eq", "value": "red"}]
    refused = index.query(ALICE, where=where, limit=50)
    assert refused.status_code == 422
    assert "indexed" in refused.json()["detail"]
    assert index.query(ALICE, where=where).status_code == 422  # the default limit is not small
    small = index.query(ADMIN, Role.ADMIN, where=where, limit=5)
    assert small.status_code == 200
    # ne says nothing an index could use
    ne = index.query(ALICE, where=[{"attr": "lb:status", "op": "ne", "value": "Done"}], limit=50)
    assert ne.status_code == 422


def test_bad_conditions_say_what_to_fix(index: IndexApi) -> None:
    cases = {
        "unknown operator": [{"attr": "lb:status", "op": "like", "value": "x"}],
        "not kept by this index": [{"attr": "lb:ceNode", "op": "eq", "value": "x"}],
        "not queryable": [{"attr": "lb:exitCode", "op": "eq", "value": "1"}],
        "does not fit": [{"attr": "jp:regtime", "op": "lt", "value": "yesterday"}],
    }
    for words, where in cases.items():
        response = index.query(ALICE, where=where, limit=1)
        assert response.status_code == 422, where
        assert words in response.json()["detail"]
    assert index.query(ALICE, where=[], after="bogus", limit=1).status_code == 422
    assert index.client.post("/v1/query", json={"where": []}).status_code == 401


def test_a_tie_past_the_cap_starts_from_the_range_not_the_state(
    index: IndexApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both conditions name more entries than the planner counts: it walks the time window,
    not ``status = Done`` (a state shared by most jobs), and the answer stays the library's."""
    records = _load(index)
    where = [
        {"attr": "lb:status", "op": "eq", "value": "Done"},
        {"attr": "jp:regtime", "op": "within", "value": "2026-01-05", "value2": "2026-01-20"},
    ]
    engine = index.services.queries
    plan = engine.plan(QueryRequest(where=[Condition(**c) for c in where]), owner=None)
    with index.services.db.engine.connect() as conn:
        # Counted up to 2 entries (and again up to 2), both conditions tie, whichever comes
        # first in the request.
        monkeypatch.setattr(planner, "ESTIMATE_CAP", 2)
        monkeypatch.setattr(planner, "TIE_CAP", 2)
        for ordered in (plan, replace(plan, indexed=plan.indexed[::-1])):
            chosen = planner.narrowest(conn, ordered.indexed, None)
            assert chosen is not None
            assert (chosen.attr, chosen.op) == (expand("jp:regtime"), "within")
    found = {j["jobid"] for j in _all(index, ADMIN, Role.ADMIN, where=where, limit=7)}
    assert found
    assert found == _oracle(records, where, None)


@pytest.mark.parametrize(
    ("owner", "where", "starts_from"),
    [
        # A day's window names fewer entries than Alice's 40 jobs: walk the window.
        (
            ALICE,
            [{"attr": "jp:regtime", "op": "within", "value": "2026-01-03", "value2": "2026-01-04"}],
            "jp:regtime",
        ),
        # Every status entry (several per job) is more than Bob's 20 jobs: walk Bob's jobs.
        (BOB, [{"attr": "lb:status", "op": "exists"}], None),
    ],
)
def test_a_tie_with_the_owners_jobs_is_counted_again(
    index: IndexApi,
    monkeypatch: pytest.MonkeyPatch,
    owner: str,
    where: list[dict[str, Any]],
    starts_from: str | None,
) -> None:
    """A non-admin query whose condition and whose owner's jobs both pass the first count: the
    owner's jobs do not win the tie by default (walking a big owner's jobs for a rare value is
    a scan); both are counted further and the narrower one starts the walk."""
    records = _load(index)
    plan = index.services.queries.plan(
        QueryRequest(where=[Condition(**c) for c in where]), owner=owner
    )
    monkeypatch.setattr(planner, "ESTIMATE_CAP", 2)
    with index.services.db.engine.connect() as conn:
        chosen = planner.narrowest(conn, plan.indexed, owner)
    assert (chosen.attr if chosen else None) == (starts_from and expand(starts_from))
    found = {j["jobid"] for j in _all(index, owner, where=where, limit=3)}
    assert found == _oracle(records, where, owner)
