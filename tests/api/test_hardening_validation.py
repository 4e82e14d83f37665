"""Regressions of issue 14 (hardening), defects 1, 8, 9, 13 and 14 (tags): hostile text, media
types, reserved tag namespaces and tag caps get a clear 4xx, never a 500, on both databases, and
one client's bad request never fails another's."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from jp_primary.app import create_app
from jp_primary.attributes import names
from jp_primary.auth.identity import Identity, Role
from jp_primary.config import TagSettings
from jp_primary.db.session import Database, create_db_engine
from jp_primary.services import jobs
from jp_primary.services.jobs import BulkItem, BulkResult, Registrar, RegistrationRequest
from jp_primary.testing.lbdumps import generate_job
from tests.helpers import ALICE, LB_HOST, Api, make_settings, new_jobid, register_job

SURROGATE_JSON = '"https://lb.example.org/x\\ud800y"'  # a lone surrogate, as JSON escapes it


def raw_json(api: Api, url: str, body: str, headers: dict[str, str]) -> httpx.Response:
    """POST a body that json.dumps could not produce as UTF-8 (lone surrogates)."""
    return api.client.post(
        url, content=body.encode(), headers={**headers, "Content-Type": "application/json"}
    )


def bad_unicode(detail: str) -> bool:
    # pydantic's JSON parser refuses lone surrogates itself; text.py says so for other paths
    return "surrogate" in detail or "unicode string" in detail


def refused(response: httpx.Response, *codes: int) -> str:
    assert response.status_code in (codes or (422,)), (response.status_code, response.text)
    detail = response.json()["detail"]
    assert detail
    return str(detail)


# -- defect 1: one bad request breaks other users' requests -------------------------------------


def test_defect_1_unstorable_text_is_a_422_before_the_database(api: Api) -> None:
    trusted = api.auth(LB_HOST, Role.TRUSTED)
    nul_owner = {"jobid": new_jobid(), "owner": "/CN=a\x00b"}
    assert "NUL" in refused(api.client.post("/v1/jobs", json=nul_owner, headers=trusted))
    long_owner = {"jobid": new_jobid(), "owner": "/CN=" + "x" * 1100}
    assert "1024" in refused(api.client.post("/v1/jobs", json=long_owner, headers=trusted))
    body = f'{{"jobid": {SURROGATE_JSON}}}'
    assert bad_unicode(refused(raw_json(api, "/v1/jobs", body, api.auth(ALICE))))
    body = f'{{"jobid": "{new_jobid()}", "owner": {SURROGATE_JSON}}}'
    assert bad_unicode(refused(raw_json(api, "/v1/jobs", body, trusted)))
    # and the service stays healthy for everyone else
    ok = api.client.post("/v1/jobs", json={"jobid": new_jobid()}, headers=api.auth(ALICE))
    assert ok.status_code == 201


@pytest.mark.parametrize(
    ("subject", "says"),
    [("/CN=" + "x" * 1100, "1024"), ("/CN=a\x00b", "NUL"), ("/CN=a\ud800b", "surrogate")],
)
def test_defect_1_unstorable_subject_is_refused_as_401(api: Api, subject: str, says: str) -> None:
    headers = api.auth(subject)
    response = api.client.post("/v1/jobs", json={"jobid": new_jobid()}, headers=headers)
    assert says in refused(response, 401)
    assert api.client.get("/v1/jobs/x", headers=headers).status_code == 401


def test_defect_1_bulk_bad_items_get_their_own_status(api: Api) -> None:
    good = [new_jobid(), new_jobid()]
    items = [
        {"jobid": good[0], "owner": ALICE},
        {"jobid": "https://lb.example.org/a\x00b", "owner": ALICE},
        {"jobid": new_jobid(), "owner": "/CN=a\x00b"},
        {"jobid": "https://[::1/x", "owner": ALICE},
        {"jobid": new_jobid(), "owner": "/CN=" + "y" * 1100},
        {"jobid": good[1], "owner": ALICE},
    ]
    body = json.dumps({"jobs": items})
    # two more items with a lone surrogate (only expressible as a JSON escape): in the owner, and
    # in the jobid, which the results echo back escaped
    body = body[:-2] + f', {{"jobid": "{new_jobid()}", "owner": {SURROGATE_JSON}}}'
    body += f', {{"jobid": {SURROGATE_JSON}}}]}}'
    response = raw_json(api, "/v1/jobs/bulk", body, api.auth(LB_HOST, Role.TRUSTED))
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 422, 422, 422, 422, 201, 422, 422]
    assert results[-1]["jobid"] == "https://lb.example.org/x\\ud800y"
    assert all(r["detail"] for r in results if r["status"] == 422)
    for jobid in good:
        found = api.client.get("/v1/jobs", params={"jobid": jobid}, headers=api.auth(ALICE))
        assert found.status_code == 200


def test_defect_1_concurrent_registrations_with_a_poisoned_one(api: Api) -> None:
    trusted = api.auth(LB_HOST, Role.TRUSTED)
    bodies = [{"jobid": new_jobid(), "owner": ALICE} for _ in range(16)]
    bodies[7] = {"jobid": new_jobid(), "owner": "/CN=mallory\x00"}

    def register(body: dict[str, str]) -> int:
        return api.client.post("/v1/jobs", json=body, headers=trusted).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(register, bodies))
    assert codes == [422 if i == 7 else 201 for i in range(16)]


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    engine = create_db_engine(database_url)
    yield Database(engine)
    engine.dispose()


def test_defect_1_group_commit_isolates_an_item_the_database_refuses(db: Database) -> None:
    """Should an item slip past validation, the database refusing it inside a group commit fails
    that item alone: the batch is retried without it."""
    caller = Identity(LB_HOST, frozenset({Role.TRUSTED}))
    poisoned = RegistrationRequest(caller, new_jobid(), "/CN=poison\ud800")  # unencodable
    batches: list[int] = []

    async def main() -> list[object]:
        registrar = Registrar(db)
        run = registrar._run

        async def counting(requests: list[RegistrationRequest]) -> list[object]:
            batches.append(len(requests))
            return list(await run(requests))

        registrar._batcher._run_batch = counting  # type: ignore[assignment]
        try:
            valid = [registrar.register(caller, new_jobid(), ALICE) for _ in range(20)]
            bad = registrar._batcher.submit(poisoned)
            return await asyncio.gather(*valid[:10], bad, *valid[10:], return_exceptions=True)
        finally:
            await registrar.close()

    outcomes = asyncio.run(main())
    assert isinstance(outcomes[10], Exception)
    assert all(getattr(o, "created", False) for i, o in enumerate(outcomes) if i != 10)
    assert max(batches) > 1  # the poisoned item really shared a batch with valid ones


def test_defect_1_bulk_isolates_an_item_the_database_refuses(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "check_text", lambda value, what, max_length: value)
    caller = Identity(LB_HOST, frozenset({Role.TRUSTED}))
    items = [BulkItem(new_jobid(), ALICE) for _ in range(9)]
    items[4] = BulkItem(new_jobid(), "/CN=poison\ud800")  # passes the (disabled) validation

    async def bulk() -> list[BulkResult]:
        registrar = Registrar(db)
        try:
            return await registrar.register_bulk(caller, items)
        finally:
            await registrar.close()

    results = asyncio.run(bulk())
    assert [r.status for r in results] == [500 if i == 4 else 201 for i in range(9)]
    assert "others were" in (results[4].detail or "")


# -- defect 8: 500 instead of 404/422 ----------------------------------------------------------


def test_defect_8_nul_and_malformed_text_in_paths_and_queries(api: Api) -> None:
    alice = api.auth(ALICE)
    key = register_job(api)
    probes = [
        ("GET", "/v1/jobs/a%00b"),
        ("GET", "/v1/jobs?jobid=%00"),
        ("PUT", "/v1/uploads/a%00b"),
        ("DELETE", "/v1/uploads/a%00b"),
        ("POST", "/v1/uploads/a%00b/commit"),
        ("GET", f"/v1/jobs/{key}/attributes?name=a%00b"),
        ("GET", f"/v1/jobs/{key}/files/osb?name=a%00b"),
        ("PUT", f"/v1/jobs/{key}/files/osb?name=a%00b"),
        ("GET", f"/v1/jobs/{key}/files/os%00b"),
        ("GET", "/v1/jobs/a%00b/tags"),
        ("GET", f"/v1/jobs/{'k' * 200}"),
    ]
    for method, url in probes:
        response = api.client.request(method, url, headers=alice, content=b"x")
        assert response.status_code == 422, (method, url, response.text)
        assert "NUL" in response.json()["detail"] or "at most" in response.json()["detail"]
    unknown = api.client.get("/v1/jobs", params={"jobid": "https://[::1/x"}, headers=alice)
    assert unknown.status_code == 404


def test_defect_8_nul_and_surrogates_in_bodies(api: Api) -> None:
    alice = api.auth(ALICE)
    key = register_job(api)
    tags = f"/v1/jobs/{key}/tags"
    refused(api.client.post(tags, json={"name": "a\x00b", "value": "v"}, headers=alice))
    refused(api.client.post(tags, json={"name": "a", "value": "v\x00"}, headers=alice))
    refused(raw_json(api, tags, '{"name": "a", "value": "x\\udc00"}', alice))
    refused(raw_json(api, tags, '{"tags": [{"name": "a\\ud800", "value": "x"}]}', alice))
    uploads = f"/v1/jobs/{key}/uploads"
    refused(api.client.post(uploads, json={"class": "osb", "name": "a\x00"}, headers=alice))
    refused(raw_json(api, uploads, '{"class": "osb", "name": "f\\ud800"}', alice))
    refused(raw_json(api, uploads, '{"class": "os\\ud800b"}', alice))
    for media_type in ("a/b\x00", "text/plain; x=" + "y" * 250):
        body = {"class": "osb", "content_type": media_type}
        refused(api.client.post(uploads, json=body, headers=alice))
    malformed = api.client.post("/v1/jobs", json={"jobid": "https://[::1/x"}, headers=alice)
    assert "malformed jobid" in refused(malformed)
    assert api.client.get(f"/v1/jobs/{key}/tags", headers=alice).json() == []


def test_defect_8_range_with_thousands_of_digits(api: Api) -> None:
    alice = api.auth(ALICE)
    key = register_job(api)
    put = api.client.put(f"/v1/jobs/{key}/files/osb", content=b"0123456789", headers=alice)
    assert put.status_code == 201, put.text
    url = f"/v1/jobs/{key}/files/osb"
    huge = "9" * 5000

    def get(range_header: str) -> httpx.Response:
        return api.client.get(url, headers={**alice, "Range": range_header})

    beyond = get(f"bytes={huge}-")
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == "bytes */10"
    to_the_end = get(f"bytes=2-{huge}")
    assert (to_the_end.status_code, to_the_end.content) == (206, b"23456789")
    suffix = get(f"bytes=-{huge}")
    assert (suffix.status_code, suffix.content) == (206, b"0123456789")
    padded = get(f"bytes={'0' * 5000}3-4")
    assert (padded.status_code, padded.content) == (206, b"34")


# -- defect 9: media types by grammar ----------------------------------------------------------


@pytest.mark.parametrize(
    "media_type",
    ["text/plain\r\nX-Injected: 1", "text/plain\n", "text/plain\x00", "text", "text/pl ain",
     "text/plain; charset", "tëxt/plain", "/plain", 'text/plain; a="unterminated'],
)  # fmt: skip
def test_defect_9_media_type_grammar_at_upload_start(api: Api, media_type: str) -> None:
    key = register_job(api)
    body = {"class": "osb", "content_type": media_type}
    response = api.client.post(f"/v1/jobs/{key}/uploads", json=body, headers=api.auth(ALICE))
    assert "media type" in refused(response) or "NUL" in response.json()["detail"]


def test_defect_9_media_type_of_a_one_shot_put(api: Api) -> None:
    alice = api.auth(ALICE)
    key = register_job(api)
    url = f"/v1/jobs/{key}/files/osb"
    for bad in ("text", "text/plain; =x", "a/b; c=d e"):
        response = api.client.put(url, content=b"x", headers={**alice, "Content-Type": bad})
        assert "Content-Type" in refused(response)
    good = 'text/plain; charset=utf-8; note="a \\"b\\""'
    stored = api.client.put(url, content=b"hello", headers={**alice, "Content-Type": good})
    assert stored.status_code == 201, stored.text
    got = api.client.get(url, headers=alice)
    assert (got.status_code, got.headers["content-type"], got.content) == (200, good, b"hello")


# -- defect 13: reserved namespaces ------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["jp:owner", f"{names.SYSTEM_OWNER}", "lb:status", "lbjdl:Executable", "jpp:anything",
     "jdl:Executable", "condor:ExitCode", "isb:file", "osb:file", "workflow:x",
     "HTTP://EGEE.cesnet.cz/en/Schema/JP/System:owner", f"{names.LB_ATTRIBUTES}/sub:x"],
)  # fmt: skip
def test_defect_13_tags_in_reserved_namespaces_are_refused(api: Api, name: str) -> None:
    key = register_job(api)
    url = f"/v1/jobs/{key}/tags"
    for caller in (api.auth(ALICE), api.auth(LB_HOST, Role.TRUSTED)):
        detail = refused(api.client.post(url, json={"name": name, "value": "x"}, headers=caller))
        assert "reserved namespace" in detail
        assert "jp-lbtag" in detail
    several = {"tags": [{"name": "fine", "value": "1"}, {"name": name, "value": "2"}]}
    refused(api.client.post(url, json=several, headers=api.auth(ALICE)))
    assert api.client.get(url, headers=api.auth(ALICE)).json() == []  # nothing half-stored
    owner = api.client.get(
        f"/v1/jobs/{key}/attributes", params={"name": "jp:owner"}, headers=api.auth(ALICE)
    )
    assert [v["value"] for v in owner.json()["values"]] == [ALICE]


def test_defect_13_user_tags_still_go_to_jp_lbtag_or_own_namespaces(api: Api) -> None:
    key = register_job(api)
    url = f"/v1/jobs/{key}/tags"
    tags = [
        {"name": "color", "value": "red"},
        {"name": "lbtag:size", "value": "L"},
        {"name": "https://vo.example.org/tags:quality", "value": "good"},
    ]
    response = api.client.post(url, json={"tags": tags}, headers=api.auth(ALICE))
    assert response.status_code == 201, response.text
    assert [t["name"] for t in response.json()] == [
        f"{names.LB_TAG}:color",
        f"{names.LB_TAG}:size",
        "https://vo.example.org/tags:quality",
    ]


def test_defect_13_lb_dump_user_tags_in_reserved_namespaces_are_not_recorded(api: Api) -> None:
    trusted = api.auth(LB_HOST, Role.TRUSTED)
    jobid = new_jobid()
    key = register_job(api, ALICE, jobid=jobid, lb=True)
    lines = generate_job(random.Random(7), "tagged", jobid=jobid)
    forged = [line.replace("http://example.org/jp:quality", "jp:owner") for line in lines]
    dump = "\n".join(lines + [f for f in forged if f not in lines]) + "\n"
    response = api.client.put(f"/v1/jobs/{key}/files/lb", content=dump.encode(), headers=trusted)
    assert response.status_code == 201, response.text
    errors = [e["message"] for e in response.json()["extraction"]["errors"]]
    assert any("user tag not recorded" in m and "jp:owner" in m for m in errors), errors
    stored = api.client.get(f"/v1/jobs/{key}/tags", headers=api.auth(ALICE)).json()
    assert [(t["name"], t["value"]) for t in stored] == [("http://example.org/jp:quality", "good")]
    owner = api.client.get(
        f"/v1/jobs/{key}/attributes", params={"name": "jp:owner"}, headers=api.auth(ALICE)
    )
    assert [v["value"] for v in owner.json()["values"]] == [ALICE]


# -- defect 14: tag volume caps ----------------------------------------------------------------


@pytest.fixture
def capped(tmp_path: Path, database_url: str) -> Iterator[Api]:
    settings = make_settings(tmp_path / "home", database_url).model_copy(
        update={"tags": TagSettings(max_per_request=3, max_per_job=5, max_value_length=10)}
    )
    with TestClient(create_app(settings)) as client:
        yield Api(client, settings)


def test_defect_14_tag_caps_per_request_per_job_and_value(capped: Api) -> None:
    api = capped
    key = register_job(api)
    url = f"/v1/jobs/{key}/tags"
    alice = api.auth(ALICE)

    def tags(count: int, value: str = "v") -> dict[str, object]:
        return {"tags": [{"name": f"t{i}", "value": value} for i in range(count)]}

    too_many = api.client.post(url, json=tags(4), headers=alice)
    assert "at most 3" in refused(too_many, 413)
    assert "JP_MAX_TAGS_PER_REQUEST" in too_many.json()["detail"]
    too_long = api.client.post(url, json={"name": "a", "value": "x" * 11}, headers=alice)
    assert "at most 10" in refused(too_long, 413)
    assert api.client.post(url, json=tags(3), headers=alice).status_code == 201
    assert api.client.post(url, json=tags(2, "x" * 10), headers=alice).status_code == 201
    full = api.client.post(url, json={"name": "one", "value": "more"}, headers=alice)
    assert "at most 5 per job" in refused(full, 422)
    assert len(api.client.get(url, headers=alice).json()) == 5


def test_defect_14_job_cap_holds_under_concurrent_taggers_and_commits(capped: Api) -> None:
    api = capped
    trusted = api.auth(LB_HOST, Role.TRUSTED)
    jobid = new_jobid()
    key = register_job(api, ALICE, jobid=jobid, lb=True)
    dump = ("\n".join(generate_job(random.Random(3), "done", jobid=jobid)) + "\n").encode()

    def tag(i: int) -> int:
        body = {"name": f"t{i}", "value": "v"}
        return api.client.post(
            f"/v1/jobs/{key}/tags", json=body, headers=api.auth(ALICE)
        ).status_code

    def commit(i: int) -> int:
        url = f"/v1/jobs/{key}/files/lb?name=dump{i}"
        return api.client.put(url, content=dump, headers=trusted).status_code

    with ThreadPoolExecutor(6) as pool:
        tagged = [pool.submit(tag, i) for i in range(8)]
        committed = [pool.submit(commit, i) for i in range(3)]
        codes = [f.result() for f in tagged]
        assert [f.result() for f in committed] == [201, 201, 201]
    assert sorted(codes) == [201] * 5 + [422] * 3  # exactly the cap, no deadlock, no 500
    assert len(api.client.get(f"/v1/jobs/{key}/tags", headers=api.auth(ALICE)).json()) == 5
