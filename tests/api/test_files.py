from __future__ import annotations

import hashlib

import pytest

from tests.helpers import ALICE, BOB, Api, register_job

DATA = bytes(range(256)) * 40  # 10240 bytes


@pytest.fixture
def stored(api: Api) -> str:
    key = register_job(api)
    response = api.client.put(
        f"/v1/jobs/{key}/files/osb", params={"name": "data"}, content=DATA, headers=api.auth(ALICE)
    )
    assert response.status_code == 201
    return key


def get(api: Api, key: str, **headers: str):  # type: ignore[no-untyped-def]
    return api.client.get(
        f"/v1/jobs/{key}/files/osb", params={"name": "data"}, headers=api.auth(ALICE) | headers
    )


def test_whole_file_with_etag(api: Api, stored: str) -> None:
    response = get(api, stored)
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["etag"] == f'"{hashlib.sha256(DATA).hexdigest()}"'
    assert response.headers["accept-ranges"] == "bytes"
    again = get(api, stored, **{"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=100-199", 100, 199),
        ("bytes=10000-", 10000, 10239),
        ("bytes=-40", 10200, 10239),
        ("bytes=10230-99999", 10230, 10239),
    ],
)
def test_range_requests(api: Api, stored: str, header: str, start: int, end: int) -> None:
    response = get(api, stored, Range=header)
    assert response.status_code == 206
    assert response.content == DATA[start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/{len(DATA)}"


def test_unsatisfiable_range_is_416(api: Api, stored: str) -> None:
    response = get(api, stored, Range="bytes=20000-")
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(DATA)}"


def test_if_range_with_another_etag_sends_everything(api: Api, stored: str) -> None:
    response = get(api, stored, Range="bytes=0-9", **{"If-Range": '"other"'})
    assert response.status_code == 200
    assert response.content == DATA


def test_link_is_refused_by_the_filesystem_backend(api: Api, stored: str) -> None:
    response = api.client.get(
        f"/v1/jobs/{stored}/files/osb",
        params={"name": "data", "link": "1"},
        headers=api.auth(ALICE),
    )
    assert response.status_code == 422


def test_files_of_others_and_missing_files(api: Api, stored: str) -> None:
    assert get(api, stored, Authorization=api.auth(BOB)["Authorization"]).status_code == 403
    missing = api.client.get(f"/v1/jobs/{stored}/files/isb", headers=api.auth(ALICE))
    assert missing.status_code == 404


def test_lost_bytes_are_an_outage_not_a_missing_file(api: Api, stored: str) -> None:
    for path in api.storage_root.rglob("data"):
        path.unlink()
    response = get(api, stored)
    assert response.status_code == 503
    assert "retry-after" in response.headers


# Defect 15 of the hardening issue: conditional requests and 405 as RFC 9110 has them.


def test_defect_15_failed_if_range_ignores_an_unsatisfiable_range(api: Api, stored: str) -> None:
    response = get(api, stored, Range="bytes=20000-", **{"If-Range": '"another"'})
    assert response.status_code == 200
    assert response.content == DATA
    assert "content-range" not in response.headers


def test_defect_15_if_range_compares_strongly(api: Api, stored: str) -> None:
    etag = f'"{hashlib.sha256(DATA).hexdigest()}"'
    assert get(api, stored, Range="bytes=0-9", **{"If-Range": etag}).status_code == 206
    weak = get(api, stored, Range="bytes=0-9", **{"If-Range": f"W/{etag}"})
    assert (weak.status_code, weak.content) == (200, DATA)
    dated = get(api, stored, Range="bytes=0-9", **{"If-Range": "Tue, 15 Nov 1994 08:12:31 GMT"})
    assert (dated.status_code, dated.content) == (200, DATA)
    # A matching If-Range keeps an unsatisfiable Range unsatisfiable.
    assert get(api, stored, Range="bytes=20000-", **{"If-Range": etag}).status_code == 416


@pytest.mark.parametrize(
    "condition",
    [
        "*",
        "{etag}",
        "W/{etag}",
        '"a", {etag}',
        '"a" ,W/{etag}, "b"',
        'W/"x",{etag}',
    ],
)
def test_defect_15_if_none_match_star_and_lists(api: Api, stored: str, condition: str) -> None:
    etag = f'"{hashlib.sha256(DATA).hexdigest()}"'
    response = get(api, stored, **{"If-None-Match": condition.format(etag=etag)})
    assert response.status_code == 304
    assert response.headers["etag"] == etag
    assert response.content == b""


@pytest.mark.parametrize("condition", ['"other"', 'W/"other", "more"', "garbage", '""'])
def test_defect_15_if_none_match_without_the_etag_sends_the_file(
    api: Api, stored: str, condition: str
) -> None:
    response = get(api, stored, **{"If-None-Match": condition})
    assert (response.status_code, response.content) == (200, DATA)


def test_defect_15_if_none_match_star_on_a_missing_file_is_404(api: Api, stored: str) -> None:
    response = api.client.get(
        f"/v1/jobs/{stored}/files/isb", headers=api.auth(ALICE) | {"If-None-Match": "*"}
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/v1/jobs/{key}/files/osb", {"GET", "PUT"}),
        ("PATCH", "/v1/jobs/{key}/tags", {"GET", "POST"}),
        ("PUT", "/v1/jobs", {"GET", "POST"}),
    ],
)
def test_defect_15_allow_lists_every_method_of_the_path(
    api: Api, stored: str, method: str, path: str, allowed: set[str]
) -> None:
    response = api.client.request(method, path.format(key=stored), headers=api.auth(ALICE))
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed
    assert response.json()["error"] == "MethodNotAllowed"
