"""``POST /v1/files/bulk``: many one-shot uploads in one multipart request, each item answering
what its one-shot PUT would (the same bytes already stored: 200), hostile bodies refused (4xx)."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import httpx

from jp_primary.auth.identity import Role
from jp_primary.client.calls import key_of
from jp_primary.testing.lbdumps import generate_job
from tests.helpers import ALICE, LB_HOST, Api, new_jobid, register_job

BULK = "/v1/files/bulk"


def _sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _post(
    api: Api,
    manifest: Any,
    bodies: list[bytes],
    subject: str = LB_HOST,
    *roles: Role,
    raw_manifest: bytes | None = None,
) -> httpx.Response:
    text = raw_manifest if raw_manifest is not None else json.dumps(manifest).encode()
    parts: list[tuple[str, Any]] = [("manifest", (None, text, "application/json"))]
    parts += [
        ("file", (f"f{i}", body, "application/octet-stream")) for i, body in enumerate(bodies)
    ]
    return api.client.post(
        BULK, files=parts, headers=api.auth(subject, *(roles or (Role.TRUSTED,)))
    )


def _item(jobid: str, body: bytes | None = None, **fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"jobid": jobid, "class": "isb"}
    if body is not None:
        item["sha256"] = _sha(body)
    return item | fields


def _stored(api: Api, jobid: str) -> dict[tuple[str, str], str]:
    answer = api.client.get(f"/v1/jobs/{key_of(jobid)}", headers=api.auth(LB_HOST, Role.TRUSTED))
    if answer.status_code == 404:
        return {}
    assert answer.status_code == 200, answer.text
    return {(f["class"], f["name"]): f["sha256"] for f in answer.json()["files"]}


def test_fresh_jobs_are_registered_and_their_files_stored(api: Api) -> None:
    jobids = [new_jobid() for _ in range(3)]
    bodies = [f"sandbox {i}".encode() for i in range(3)]
    manifest = {
        "files": [
            _item(j, b, register=True, register_owner=ALICE)
            for j, b in zip(jobids, bodies, strict=True)
        ]
    }
    answer = _post(api, manifest, bodies)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [(r["index"], r["status"], r["registered"]) for r in results] == [
        (0, 201, True),
        (1, 201, True),
        (2, 201, True),
    ]
    for jobid, body, result in zip(jobids, bodies, results, strict=True):
        assert result["file"]["sha256"] == _sha(body)
        assert result["file"]["class"] == "isb"
        assert _stored(api, jobid) == {("isb", ""): _sha(body)}
        owner = api.client.get(f"/v1/jobs/{key_of(jobid)}", headers=api.auth(ALICE)).json()
        assert owner["owner"] == ALICE
    # The same request again: every item is there with the same bytes (200, nothing new).
    again = _post(api, manifest, bodies).json()["results"]
    assert [(r["status"], r["file"]["sha256"]) for r in again] == [(200, _sha(b)) for b in bodies]


def test_mixed_items_each_answer_as_their_put_would(api: Api) -> None:
    fresh, known, unknown = new_jobid(), new_jobid(), new_jobid()
    register_job(api, ALICE, jobid=known, lb=True)
    first = _post(
        api, {"files": [_item(known, b"old"), _item(known, b"keep", name="b")]}, [b"old", b"keep"]
    )
    assert [r["status"] for r in first.json()["results"]] == [201, 201], first.text
    bodies = [b"fresh", b"old", b"new bytes", b"tampered", b"nobody", b"x", b"named"]
    manifest = {
        "files": [
            _item(fresh, b"fresh", register=True),  # 0: registered, stored
            _item(known, b"old"),  # 1: the same bytes already stored: 200
            _item(known, b"new bytes", name="b"),  # 2: other bytes under a taken name: 409
            _item(known, b"not these", name="c"),  # 3: declared digest differs: 422
            _item(unknown, b"nobody"),  # 4: unknown job, no registration: 404
            {"jobid": known, "class": "no-such-class"},  # 5: unknown class: 422
            _item(known, b"named", name="d"),  # 6: stored
        ]
    }
    answer = _post(api, manifest, bodies)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["status"] for r in results] == [201, 200, 409, 422, 404, 422, 201]
    assert results[0]["registered"] is True
    assert results[1]["file"]["sha256"] == _sha(b"old")
    assert results[2]["error"] == "Conflict"
    assert "already stored" in results[2]["detail"]
    assert results[3]["error"] == "DigestMismatch"
    assert results[4]["error"] == "NotFound"
    assert "unknown file class" in results[5]["detail"]
    assert _stored(api, fresh) == {("isb", ""): _sha(b"fresh")}
    assert _stored(api, known) == {
        ("isb", ""): _sha(b"old"),
        ("isb", "b"): _sha(b"keep"),
        ("isb", "d"): _sha(b"named"),
    }
    assert _stored(api, unknown) == {}
    # The refused digest left nothing behind: the right bytes go in under that name.
    retry = _post(api, {"files": [_item(known, b"tampered", name="c")]}, [b"tampered"])
    assert [r["status"] for r in retry.json()["results"]] == [201]


def test_the_same_file_twice_in_one_request_is_refused_once(api: Api) -> None:
    jobid = new_jobid()
    register_job(api, ALICE, jobid=jobid, lb=True)
    manifest = {"files": [_item(jobid, b"a"), _item(jobid, b"b")]}
    results = _post(api, manifest, [b"a", b"b"]).json()["results"]
    assert [r["status"] for r in results] == [201, 422]
    assert "item 0" in results[1]["detail"]


def test_only_trusted_services_may_send_bulk(api: Api) -> None:
    jobid = new_jobid()
    register_job(api, ALICE, jobid=jobid)
    answer = _post(api, {"files": [_item(jobid, b"x")]}, [b"x"], ALICE, Role.ADMIN)
    assert answer.status_code == 403, answer.text
    assert _stored(api, jobid) == {}


def _refused(answer: httpx.Response, status: int, *words: str) -> None:
    assert answer.status_code == status, answer.text
    detail = answer.json()["detail"]
    for word in words:
        assert word in detail, detail


def test_hostile_manifests_are_refused_with_a_detail(api: Api) -> None:
    jobid = new_jobid()
    register_job(api, ALICE, jobid=jobid, lb=True)
    good = {"files": [_item(jobid, b"x")]}
    _refused(_post(api, None, [b"x"], raw_manifest=b"{not json"), 422, "not valid JSON")
    _refused(_post(api, None, [b"x"], raw_manifest=b"\xff\xfe"), 422, "not valid JSON")
    nul = {"files": [_item(jobid, b"x", name="a\x00b")]}
    _refused(_post(api, nul, [b"x"]), 422, "manifest")
    surrogate = b'{"files": [{"jobid": "%s", "class": "isb", "name": "a\\ud800"}]}' % jobid.encode()
    # pydantic's JSON parser refuses a lone surrogate escape as invalid JSON.
    _refused(_post(api, None, [b"x"], raw_manifest=surrogate), 422, "not valid JSON")
    _refused(_post(api, {"files": []}, []), 422, "manifest")
    _refused(_post(api, {"files": [_item(jobid, b"x", extra=1)]}, [b"x"]), 422, "extra")
    _refused(_post(api, good, [b"x", b"y"]), 422, "1 files but 2")
    _refused(
        _post(api, {"files": [_item(jobid, b"x"), _item(jobid, b"y", name="y")]}, [b"x"]),
        422,
        "2 files but 1",
    )
    many = {"files": [_item(jobid, b"x", name=str(i)) for i in range(101)]}
    _refused(_post(api, many, [b"x"] * 101), 413, "split the files")
    _refused(_post(api, many, [b"x"]), 422, "manifest")
    # Not multipart, no manifest, a file part without a filename.
    headers = api.auth(LB_HOST, Role.TRUSTED)
    _refused(api.client.post(BULK, json=good, headers=headers), 422, "multipart/form-data")
    only_file = api.client.post(BULK, files=[("file", ("f", b"x"))], headers=headers)
    _refused(only_file, 422, "'manifest'")
    text_part = api.client.post(
        BULK,
        files=[("manifest", (None, json.dumps(good).encode())), ("file", (None, b"x"))],
        headers=headers,
    )
    _refused(text_part, 422, "filename")
    assert _stored(api, jobid) == {}


def test_a_body_over_the_bulk_cap_is_refused(make_api: Any) -> None:
    api = make_api(server={"max_bulk_body": 64 * 1024})
    jobid = new_jobid()
    register_job(api, ALICE, jobid=jobid, lb=True)
    big = b"x" * (100 * 1024)
    _refused(_post(api, {"files": [_item(jobid, big)]}, [big]), 413, "limited to 65536")
    small = _post(api, {"files": [_item(jobid, b"x")]}, [b"x"])
    assert [r["status"] for r in small.json()["results"]] == [201]


def test_a_file_over_the_file_size_limit_is_refused_alone(make_api: Any) -> None:
    api = make_api(max_file_size=1000)
    jobid = new_jobid()
    register_job(api, ALICE, jobid=jobid, lb=True)
    big = b"y" * 2000
    manifest = {"files": [_item(jobid, big), _item(jobid, b"ok", name="ok")]}
    results = _post(api, manifest, [big, b"ok"]).json()["results"]
    assert [r["status"] for r in results] == [413, 201]
    assert _stored(api, jobid) == {("isb", "ok"): _sha(b"ok")}


def test_a_brief_answer_leaves_out_the_values_and_stores_them_all_the_same(api: Api) -> None:
    jobids = [new_jobid() for _ in range(2)]
    dumps = [
        ("\n".join(generate_job(random.Random(5), "done", jobid=j)) + "\n").encode() for j in jobids
    ]
    manifest = {
        "files": [
            _item(j, d, **{"class": "lb", "register": True})
            for j, d in zip(jobids, dumps, strict=True)
        ]
    }
    parts: list[tuple[str, Any]] = [("manifest", (None, json.dumps(manifest).encode(), None))]
    parts += [("file", (f"f{i}", d, "text/plain")) for i, d in enumerate(dumps)]
    headers = api.auth(LB_HOST, Role.TRUSTED)
    answer = api.client.post(BULK, files=parts, params={"brief": "true"}, headers=headers)
    assert answer.status_code == 200, answer.text
    for jobid, dump, result in zip(jobids, dumps, answer.json()["results"], strict=True):
        assert result["status"] == 201, result
        assert result["file"]["sha256"] == _sha(dump)
        assert "extraction" not in result["file"]
        assert result["file"]["extraction_error_count"] == 0
        stored = api.client.get(f"/v1/jobs/{key_of(jobid)}/attributes", headers=headers)
        assert any(v["name"].startswith("http://egee.cesnet.cz") for v in stored.json()["values"])
    # Without brief the same request's answer (200: the same bytes) carries the values.
    full = _post(api, manifest, dumps).json()["results"]
    assert [r["status"] for r in full] == [200, 200]
    assert all(r["file"]["extraction"]["values"] for r in full)
