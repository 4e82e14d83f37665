"""POST /v1/query and POST /v1/jobs/attributes over HTTP, on SQLite and PostgreSQL (issue 9).

Each test works on its own owner or its own tag value (the database is shared by the session).
Typed values (L&B-derived integers and states) are written through the repository layer with the
service's registry (``jp_primary.testing.jobsets.store``), as an upload's extraction writes them.
"""

from __future__ import annotations

import base64
import random
import re
import secrets
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jp_primary.app import create_app
from jp_primary.attributes.conditions import Condition, ConditionError, compile_conditions
from jp_primary.attributes.names import LB_ATTRIBUTES, LB_TAG, SYSTEM_JOBID, SYSTEM_OWNER
from jp_primary.auth.identity import Role
from jp_primary.config import DatabaseSettings
from jp_primary.db.session import create_db_engine, new_session
from jp_primary.plugins.registry import PluginRegistry
from jp_primary.testing.jobsets import SyntheticJob, store
from jp_primary.testing.lbdumps import generate_job
from jp_primary.testing.queries import (
    BUILTIN_ATTRIBUTES,
    conditions,
    expected,
    job_values,
    page_order,
)
from tests.helpers import LB_HOST, Api, make_settings, new_jobid, register_job

ADMIN = ("/CN=Operator", Role.ADMIN)
INDEXER = ("/CN=index.example.org", Role.INDEXER)
TRUSTED = (LB_HOST, Role.TRUSTED)


def someone() -> str:
    return f"/DC=org/DC=example/CN=q9 user {secrets.token_hex(4)}"


def query(api: Api, who: tuple[Any, ...] | str, **body: Any) -> httpx.Response:
    subject = (who,) if isinstance(who, str) else who
    return api.client.post("/v1/query", json=body, headers=api.auth(*subject))


def tag(api: Api, key: str, owner: str, name: str, value: str) -> None:
    answer = api.client.post(
        f"/v1/jobs/{key}/tags", json={"name": name, "value": value}, headers=api.auth(owner)
    )
    assert answer.status_code == 201, answer.text


def keys(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [job["key"] for job in answer.json()["jobs"]]


def stored(api: Api, owner: str, *value_lists: list[tuple[str, str, str]]) -> list[str]:
    """Jobs with the given (name, value, origin) values, written through the repositories."""
    engine = create_db_engine(api.settings.database_url, pool_size=1)
    at = datetime.now(UTC)
    made = []
    for values in value_lists:
        key = secrets.token_urlsafe(16)[:22]
        made.append(
            SyntheticJob(f"https://lb.example.org:9000/{key}", key, owner, at, tuple(values))
        )
    with new_session(engine, PluginRegistry().attribute_types()) as session:
        store(session, made)
        session.commit()
    engine.dispose()
    return [job.key for job in made]


def test_tag_query_with_select_and_latest(api: Api) -> None:
    owner, campaign = someone(), secrets.token_hex(6)
    first, second, other = (register_job(api, owner) for _ in range(3))
    for key in (first, second):
        tag(api, key, owner, "campaign", campaign)
    tag(api, other, owner, "campaign", "something else")
    tag(api, second, owner, "run", "1")
    tag(api, second, owner, "run", "2")
    where = [{"attr": "tag:campaign", "op": "eq", "value": campaign}]
    answer = query(api, owner, where=where, select=["tag:run", "system:owner"])
    assert keys(answer) == [first, second]
    body = answer.json()
    assert body["next"] is None
    assert body["jobs"][0]["owner"] == owner
    assert body["jobs"][0]["jobid"].endswith(first)
    runs = [v["value"] for v in body["jobs"][1]["values"] if v["name"] == f"{LB_TAG}:run"]
    assert runs == ["1", "2"]
    owners = [v for v in body["jobs"][0]["values"] if v["name"] == SYSTEM_OWNER]
    assert [(v["value"], v["origin"]) for v in owners] == [(owner, "SYSTEM")]
    latest = query(api, owner, where=where, select=["tag:run"], latest=True).json()
    assert [v["value"] for v in latest["jobs"][1]["values"]] == ["2"]
    assert latest["jobs"][0]["values"] == []


def test_owners_see_only_their_jobs_admin_indexer_trusted_all(api: Api) -> None:
    alice, bob, campaign = someone(), someone(), secrets.token_hex(6)
    mine, theirs = register_job(api, alice), register_job(api, bob)
    tag(api, mine, alice, "campaign", campaign)
    tag(api, theirs, bob, "campaign", campaign)
    where = [{"attr": "tag:campaign", "op": "eq", "value": campaign}]
    assert keys(query(api, alice, where=where)) == [mine]
    assert keys(query(api, bob, where=where)) == [theirs]
    for who in (ADMIN, INDEXER, TRUSTED):
        assert keys(query(api, who, where=where)) == [mine, theirs]
    # Naming someone else as owner does not widen what an owner sees.
    by_owner = [{"attr": "system:owner", "op": "eq", "value": bob}]
    assert keys(query(api, alice, where=by_owner)) == []
    assert keys(query(api, ADMIN, where=by_owner)) == [theirs]


def test_system_attributes_are_queryable(api: Api) -> None:
    owner = someone()
    jobid = new_jobid()
    key = register_job(api, owner, jobid=jobid)
    assert keys(
        query(api, owner, where=[{"attr": "system:jobId", "op": "eq", "value": jobid}])
    ) == [key]
    prefix = [{"attr": "jp:jobId", "op": "prefix", "value": jobid[:-3]}]
    assert keys(query(api, owner, where=prefix)) == [key]
    now = datetime.now(UTC)
    east = timezone_text(now - timedelta(hours=1), 5)
    west = timezone_text(now + timedelta(hours=1), -7)
    within = [{"attr": "system:regtime", "op": "within", "value": east, "value2": west}]
    assert keys(query(api, owner, where=within)) == [key]
    later = [{"attr": "system:regtime", "op": "gt", "value": west}]
    assert keys(query(api, owner, where=later)) == []
    full = [
        {"attr": SYSTEM_JOBID, "op": "exists"},
        {"attr": SYSTEM_OWNER, "op": "eq", "value": owner},
    ]
    assert keys(query(api, owner, where=full)) == [key]


def timezone_text(at: datetime, hours: int) -> str:
    return at.astimezone(timezone(timedelta(hours=hours))).isoformat()


def test_typed_values_integers_states_done_codes_any_value(api: Api) -> None:
    owner, scope = someone(), secrets.token_hex(6)
    lb = f"{LB_ATTRIBUTES}:"
    scoped = (f"{LB_TAG}:scope", scope, "USER")
    nine, ten, failed, both = stored(
        api,
        owner,
        [scoped, (lb + "exitCode", "9", "FILE"), (lb + "status", "Done", "FILE")],
        [scoped, (lb + "exitCode", "10", "FILE"), (lb + "status", "Cleared", "FILE")],
        [scoped, (lb + "doneCode", "FAILED", "FILE"), (lb + "status", "DONE", "FILE")],
        [scoped, (lb + "exitCode", "x", "FILE"), (lb + "exitCode", "12", "FILE")],
    )
    base = [{"attr": "tag:scope", "op": "eq", "value": scope}]

    def run(*where: dict[str, Any]) -> list[str]:
        return keys(query(api, owner, where=[*base, *where]))

    assert run({"attr": "lb:exitCode", "op": "gt", "value": "9"}) == [ten, both]
    assert run({"attr": "lb:exitCode", "op": "lt", "value": "10"}) == [nine]
    assert run({"attr": "lb:exitCode", "op": "ne", "value": "12"}) == [nine, ten, both]
    assert run({"attr": "lb:status", "op": "eq", "value": "done"}) == [nine, failed]
    assert run({"attr": "lb:status", "op": "gt", "value": "Done"}) == [ten]  # Cleared is after
    assert run({"attr": "lb:doneCode", "op": "gt", "value": "0"}) == [failed]
    assert run({"attr": "lb:exitCode", "op": "in", "values": ["010", "12"]}) == [ten, both]
    assert run({"attr": "lb:status", "op": "exists", "origin": "USER"}) == []


def _follow(
    api: Api, who: tuple[Any, ...] | str, where: list[dict[str, Any]], limit: int
) -> list[str]:
    """The keys of every page of a query, following next."""
    seen: list[str] = []
    after = None
    while True:
        body: dict[str, Any] = {"where": where, "limit": limit}
        if after is not None:
            body["after"] = after
        page = query(api, who, **body)
        seen += keys(page)
        after = page.json()["next"]
        if after is None:
            return seen


# An owner's query comes in job id order; an admin's with a range condition in that range's
# order (docs/queries.md): pagination is stable under concurrent registrations in both.
@pytest.mark.parametrize("ranged", [False, True], ids=["job order", "regtime order"])
def test_pages_follow_next_without_repeats_while_others_register(api: Api, ranged: bool) -> None:
    owner, campaign = someone(), secrets.token_hex(6)
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    initial = []
    for _ in range(23):
        key = register_job(api, owner)
        tag(api, key, owner, "campaign", campaign)
        initial.append(key)
    stop = threading.Event()
    added: list[str] = []

    def register_more() -> None:
        while not stop.is_set() and len(added) < 40:
            key = register_job(api, owner)
            tag(api, key, owner, "campaign", campaign)
            added.append(key)

    where = [{"attr": "tag:campaign", "op": "eq", "value": campaign}]
    if ranged:
        where.insert(0, {"attr": "system:regtime", "op": "gt", "value": since})
    worker = threading.Thread(target=register_more)
    worker.start()
    try:
        seen = _follow(api, ADMIN if ranged else owner, where, limit=4)
    finally:
        stop.set()
        worker.join()
    assert len(seen) == len(set(seen)), "a job came twice"
    assert set(initial) <= set(seen), "a job that existed at the first page was skipped"
    assert set(seen) <= set(initial) | set(added)
    assert seen[: len(initial)] == initial  # registered in this order, regtimes ascending


def test_default_limit_and_exact_last_page(api: Api) -> None:
    owner, campaign = someone(), secrets.token_hex(6)
    made = stored(api, owner, *[[(f"{LB_TAG}:campaign", campaign, "USER")] for _ in range(101)])
    where = [{"attr": "tag:campaign", "op": "eq", "value": campaign}]
    first = query(api, owner, where=where)
    assert keys(first) == made[:100]
    second = query(api, owner, where=where, after=first.json()["next"])
    assert keys(second) == made[100:]
    assert second.json()["next"] is None
    exact = query(api, owner, where=where, limit=101)
    assert exact.json()["next"] is None
    assert keys(query(api, owner, where=[])) == made[:100]  # no condition: all one's jobs, paged


def _cursor(plain: str) -> str:
    return base64.urlsafe_b64encode(plain.encode()).decode()


BAD = [
    (
        {"where": [{"attr": "lb:status", "op": "like", "value": "D"}]},
        "where\\[0\\]: unknown operator",
    ),
    (
        {
            "where": [
                {"attr": "lb:status", "op": "exists"},
                {"attr": "lb:exitCode", "op": "gt", "value": "zero"},
            ]
        },
        "where\\[1\\]: value does not fit .*exitCode \\(type integer\\)",
    ),
    (
        {"where": [{"attr": "system:regtime", "op": "within", "value": "2026-11-29T00:00:00Z"}]},
        "where\\[0\\]: within needs value2",
    ),
    (
        {"where": [{"attr": "lb:status", "op": "exists"}] * 65},
        "where\\[64\\]: at most 64 conditions",
    ),
    (
        {"where": [{"attr": "tag:x", "op": "in", "values": [str(n) for n in range(1001)]}]},
        "where\\[0\\]: in takes at most 1000 values",
    ),
    ({"where": [{"attr": "lb:exitCode", "op": "prefix", "value": "1"}]}, "prefix works on strings"),
    ({"where": [{"attr": "nosuch:x", "op": "exists"}]}, "where\\[0\\]: unknown alias 'nosuch'"),
    ({"where": [{"attr": "system:regtime", "op": "gt", "value": "soon"}]}, "not a timestamp"),
    ({"where": [], "after": "not-a-cursor"}, "after is not a cursor"),
    ({"where": [], "after": _cursor("jpq2:5:2026")}, "after is a cursor of another query"),
    ({"where": [], "after": _cursor("jpq2:5:\x00")}, "after is not a cursor"),
    ({"where": [], "after": _cursor("jpq1:x")}, "after is not a cursor"),
    ({"where": [], "select": ["tag:a", "campaign"]}, "select\\[1\\]: attribute 'campaign'"),
]


@pytest.mark.parametrize(("body", "message"), BAD)
def test_bad_queries_are_422_saying_what_and_where(
    api: Api, body: dict[str, Any], message: str
) -> None:
    answer = query(api, someone(), **body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "InvalidInput"
    assert re.search(message, answer.json()["detail"]), answer.json()["detail"]


@pytest.mark.parametrize("limit", [0, 10_001, "10"])
def test_limits_out_of_range_are_422(api: Api, limit: object) -> None:
    assert query(api, someone(), where=[], limit=limit).status_code == 422


def test_bulk_values_by_jobid_and_key_with_unknown_and_forbidden(api: Api) -> None:
    owner, other = someone(), someone()
    jobid = new_jobid()
    mine = register_job(api, owner, jobid=jobid)
    tag(api, mine, owner, "color", "green")
    theirs = register_job(api, other)
    url, headers = "/v1/jobs/attributes", api.auth(owner)
    unknown = new_jobid()
    by_jobid = api.client.post(
        url, json={"jobids": [jobid, unknown], "names": ["tag:color"]}, headers=headers
    )
    assert by_jobid.status_code == 200, by_jobid.text
    body = by_jobid.json()
    assert [j["key"] for j in body["jobs"]] == [mine]
    assert [(v["name"], v["value"]) for v in body["jobs"][0]["values"]] == [
        (f"{LB_TAG}:color", "green")
    ]
    assert body["unknown"] == [unknown]
    by_key = api.client.post(url, json={"keys": [mine, theirs, "nosuchkey"]}, headers=headers)
    body = by_key.json()
    assert body["forbidden"] == [theirs]
    assert body["unknown"] == ["nosuchkey"]
    names = {v["name"] for v in body["jobs"][0]["values"]}
    assert {SYSTEM_OWNER, SYSTEM_JOBID, f"{LB_TAG}:color"} <= names
    admin = api.client.post(url, json={"keys": [mine, theirs]}, headers=api.auth(*ADMIN)).json()
    assert [j["key"] for j in admin["jobs"]] == [mine, theirs]
    assert (
        api.client.post(url, json={"keys": [mine], "jobids": [jobid]}, headers=headers).status_code
        == 422
    )
    assert api.client.post(url, json={}, headers=headers).status_code == 422
    many = {"keys": [f"k{n}" for n in range(1001)]}
    assert api.client.post(url, json=many, headers=headers).status_code == 422


# Statement timeouts are PostgreSQL's (SQLite runs in-process, one statement at a time).
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_statement_timeout_is_503_with_retry_after(api: Api, tmp_path: Path) -> None:
    owner = someone()
    stored(api, owner, *[[(f"{LB_TAG}:t{n}", "y", "USER") for n in range(64)] for _ in range(50)])
    settings = make_settings(tmp_path / "strict", api.settings.database_url)
    # 1 ms: less than 64 semi-joins over the table take.
    strict_db = DatabaseSettings(url=api.settings.database_url, query_timeout=0.001)
    settings = settings.model_copy(update={"database": strict_db})
    heavy = [{"attr": f"tag:t{n}", "op": "ne", "value": "x"} for n in range(64)]
    with TestClient(create_app(settings)) as client:
        strict = Api(client, settings)
        answer = query(strict, ADMIN, where=heavy, limit=10_000)
        assert answer.status_code == 503, answer.text
        assert int(answer.headers["Retry-After"]) >= 1
        assert "cancelled" in answer.json()["detail"]
        # The connection went back to the pool usable: the next query answers.
        assert query(strict, owner, where=[]).status_code in (200, 503)
    assert query(api, owner, where=heavy[:2]).status_code == 200


def _wire(condition: Condition) -> dict[str, Any]:
    fields = {
        "attr": condition.attr,
        "op": condition.op,
        "value": condition.value,
        "value2": condition.value2,
        "values": None if condition.values is None else list(condition.values),
        "origin": condition.origin,
    }
    return {name: value for name, value in fields.items() if value is not None}


TYPES = PluginRegistry().attribute_types()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    jobs=st.lists(job_values(BUILTIN_ATTRIBUTES), min_size=1, max_size=6),
    where=st.lists(conditions(BUILTIN_ATTRIBUTES), min_size=1, max_size=3),
)
def test_differential_api_answers_as_brute_force(
    api: Api, jobs: list[list[tuple[str, str, str]]], where: list[Condition]
) -> None:
    """Random jobs and random queries: the API's answer is the library's ``matches`` over the
    jobs' values (and a query the library refuses is a 422 naming the same condition)."""
    scope = secrets.token_hex(8)
    scoped = [[(f"{LB_TAG}:scope", scope, "USER"), *values] for values in jobs]
    body = [{"attr": "tag:scope", "op": "eq", "value": scope}, *map(_wire, where)]
    refused: int | None = None
    try:
        compiled = compile_conditions(where, TYPES)
    except ConditionError as exc:
        refused = exc.index + 1  # the scope condition comes first
    if refused is not None:
        answer = query(api, ADMIN, where=body)
        assert answer.status_code == 422
        assert answer.json()["detail"].startswith(f"where[{refused}]: ")
        return
    owner = someone()
    made_keys = stored(api, owner, *scoped)
    made = [
        SyntheticJob("", key, owner, datetime.now(UTC), tuple(values))
        for key, values in zip(made_keys, scoped, strict=True)
    ]
    answer = query(api, ADMIN, where=body, limit=1000)
    assert set(keys(answer)) == expected(made, compiled)
    assert keys(answer) == page_order(made, compiled)  # a range condition's order, or job id
    if len(keys(answer)) > 1:  # pages of one, following next, come in the same order
        assert _follow(api, ADMIN, body, limit=1) == keys(answer)


def test_values_derived_from_an_uploaded_lb_dump_are_typed_and_queryable(api: Api) -> None:
    """End to end: the service keys what its plugins derive with their declared types."""
    owner, scope = someone(), secrets.token_hex(6)
    jobid = new_jobid()
    key = register_job(api, owner, jobid=jobid)
    dump = "\n".join(generate_job(random.Random(3), "done", jobid=jobid)).encode()
    stored_file = api.client.put(f"/v1/jobs/{key}/files/lb", content=dump, headers=api.auth(owner))
    assert stored_file.status_code in (200, 201), stored_file.text
    tag(api, key, owner, "scope", scope)
    base = [{"attr": "tag:scope", "op": "eq", "value": scope}]

    def run(*where: dict[str, Any]) -> list[str]:
        return keys(query(api, owner, where=[*base, *where]))

    assert run({"attr": "lb:status", "op": "eq", "value": "DONE"}) == [key]
    assert run({"attr": "lb:status", "op": "lt", "value": "Cleared"}) == [key]  # Done < Cleared
    assert run({"attr": "lb:doneCode", "op": "eq", "value": "0"}) == [key]  # OK
    assert run({"attr": "lb:doneCode", "op": "gt", "value": "0"}) == []
    assert run({"attr": "lb:lastUpdateTime", "op": "gt", "value": "2000-01-01T00:00:00+05:00"}) == [
        key
    ]
    answer = query(api, owner, where=base, select=["lb:status"], latest=True).json()
    assert [v["value"] for v in answer["jobs"][0]["values"]] == ["Done"]
