"""Defect 2 (issue 14): bodies are never read before authentication; JSON bodies are capped.

The app is driven through raw ASGI inside the TestClient's event loop, with a ``receive`` that
counts what the server pulls: so "not read" is measured, not inferred. Both databases.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from tests.helpers import ALICE, Api, new_jobid

CHUNK = 64 * 1024
HUGE = 400 * 1000 * 1000  # what the body claims (never produced in full)


class RawResult:
    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""
        self.pulled = 0  # body bytes the server took from the client


def raw(
    api: Api,
    method: str,
    path: str,
    headers: dict[str, str],
    total: int | None = HUGE,
    chunked: bool = False,
) -> RawResult:
    """One request through the ASGI app; the body is ``total`` bytes made on demand."""
    result = RawResult()
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    if chunked:
        raw_headers.append((b"transfer-encoding", b"chunked"))
    elif total is not None:
        raw_headers.append((b"content-length", str(total).encode()))
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw_headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8901),
        "state": {},
    }
    remaining = total if total is not None and not chunked else None

    async def receive() -> dict[str, Any]:
        nonlocal remaining
        if result.status:  # answered: a real server would see the client go on sending
            await anyio.sleep(0)
        size = CHUNK if remaining is None else min(CHUNK, remaining)
        if remaining is not None:
            remaining -= size
        result.pulled += size
        more = remaining is None or remaining > 0
        if result.pulled > 64 * 1024 * 1024:
            raise AssertionError("the server read 64 MiB of a body it should have refused")
        return {"type": "http.request", "body": b"{" * size, "more_body": more}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            result.status = message["status"]
            result.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            result.body += message.get("body", b"")

    async def call() -> None:
        with anyio.fail_after(30):
            await api.client.app(scope, receive, send)

    assert api.client.portal is not None
    api.client.portal.call(call)
    return result


def test_defect_2_unauthenticated_big_body_is_refused_unread(api: Api) -> None:
    for path in ("/v1/jobs", "/v1/jobs/bulk", f"/v1/jobs/{'a' * 20}/tags"):
        result = raw(api, "POST", path, {"content-type": "application/json"})
        assert result.status == 401, result.body
        assert result.pulled == 0
        assert result.headers["connection"] == "close"
        assert b"authentication required" in result.body


def test_defect_2_bad_credentials_are_refused_before_the_body(api: Api) -> None:
    bad = {"authorization": "Bearer not.a.token", "content-type": "application/json"}
    result = raw(api, "POST", "/v1/jobs", bad)
    assert (result.status, result.pulled) == (401, 0)
    assert b"invalid bearer token" in result.body
    assert b"not.a.token" not in result.body
    # Upload routes stream, but not for strangers either.
    upload = raw(api, "PUT", "/v1/uploads/some-upload", {})
    assert (upload.status, upload.pulled) == (401, 0)


def test_defect_2_declared_length_over_the_cap_is_413_unread(api: Api) -> None:
    result = raw(api, "POST", "/v1/jobs", api.auth(ALICE) | {"content-type": "application/json"})
    assert (result.status, result.pulled) == (413, 0)
    assert b"limited to 1048576 bytes" in result.body
    assert result.headers["connection"] == "close"


def test_defect_2_chunked_body_is_cut_at_the_cap(api: Api) -> None:
    headers = api.auth(ALICE) | {"content-type": "application/json"}
    result = raw(api, "POST", "/v1/jobs", headers, total=None, chunked=True)
    assert result.status == 413
    assert 1024 * 1024 < result.pulled <= 1024 * 1024 + CHUNK
    assert b"limited to 1048576 bytes" in result.body


def test_defect_2_bodies_under_the_cap_and_uploads_over_it_work(api: Api) -> None:
    created = api.client.post("/v1/jobs", json={"jobid": new_jobid()}, headers=api.auth(ALICE))
    assert created.status_code == 201
    key = created.json()["key"]
    data = b"x" * (1024 * 1024 + 4096)  # over the JSON cap: uploads stream past it
    put = api.client.put(f"/v1/jobs/{key}/files/isb", content=data, headers=api.auth(ALICE))
    assert put.status_code == 201, put.text
    assert put.json()["size"] == len(data)


def test_defect_2_the_cap_is_a_setting(make_api: Callable[..., Api]) -> None:
    api = make_api(server={"max_json_body": "1KiB"})
    headers = api.auth(ALICE)
    small = api.client.post("/v1/jobs", json={"jobid": new_jobid()}, headers=headers)
    assert small.status_code == 201
    padded = {"jobid": new_jobid(), "owner": ALICE, "x": "y" * 2000}
    big = api.client.post("/v1/jobs", json=padded, headers=headers)
    assert big.status_code == 413
    assert "limited to 1024 bytes" in big.json()["detail"]


def test_defect_2_requests_in_flight_are_bounded(make_api: Callable[..., Api]) -> None:
    api = make_api(server={"max_requests_in_flight": 1})
    release = anyio.Event()
    statuses: list[int] = []

    def scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 40001),
            "server": ("127.0.0.1", 8901),
            "state": {},
        }

    token = api.auth(ALICE)["Authorization"].encode()
    with_body = [(b"authorization", token), (b"content-length", b"20")]

    async def stalled_body() -> dict[str, Any]:
        await release.wait()
        return {"type": "http.disconnect"}

    async def no_body() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def slow_send(message: dict[str, Any]) -> None:
        await release.wait()  # a response the server is busy writing: that is work

    async def run() -> None:
        app = api.client.app
        async with anyio.create_task_group() as tg:
            # Waiting for a client's body holds no slot: the next request still runs.
            tg.start_soon(app, scope("POST", "/v1/jobs", with_body), stalled_body, send)
            await anyio.sleep(0.2)
            await app(scope("GET", "/healthz", []), no_body, send)
            assert statuses == [200]
            # A request at work holds the only slot: the next one gets 503.
            tg.start_soon(app, scope("GET", "/healthz", []), no_body, slow_send)
            await anyio.sleep(0.2)
            await app(scope("GET", "/healthz", []), no_body, send)
            assert statuses == [200, 503]
            release.set()
        await app(scope("GET", "/healthz", []), no_body, send)

    assert api.client.portal is not None
    api.client.portal.call(run)
    assert statuses[1] == 503
    assert statuses[-1] == 200


def test_access_log_line_without_credentials(
    make_api: Callable[..., Api], caplog: pytest.LogCaptureFixture
) -> None:
    api = make_api(server={"access_log": True})
    headers = api.auth(ALICE)
    token = headers["Authorization"].split()[1]
    with caplog.at_level(logging.INFO, logger="jp_primary.access"):
        created = api.client.post("/v1/jobs", json={"jobid": new_jobid()}, headers=headers)
        key = created.json()["key"]
        api.client.get(f"/v1/jobs/{key}/attributes?name=secret-query-value", headers=headers)
        api.client.get("/v1/jobs/x", headers={"Authorization": "Bearer not.a.token"})
    lines = [r.getMessage() for r in caplog.records if r.name == "jp_primary.access"]
    assert len(lines) == 3, lines
    assert lines[0].startswith("testclient:")
    assert '"POST /v1/jobs" 201 ' in lines[0]
    assert f'subject="{ALICE}"' in lines[0]
    assert f'"GET /v1/jobs/{key}/attributes" 200 ' in lines[1]
    assert '"GET /v1/jobs/x" 401 ' in lines[2]
    assert 'subject="-"' in lines[2]
    text = "\n".join(lines)
    for secret in (token, "not.a.token", "secret-query-value", "Bearer"):
        assert secret not in text


def test_access_log_is_off_by_default(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="jp_primary.access"):
        assert api.client.get("/healthz").status_code == 200
    assert not [r for r in caplog.records if r.name == "jp_primary.access"]
