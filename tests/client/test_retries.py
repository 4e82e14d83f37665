"""Errors become the class the API names; idempotent calls are retried on 503 and connection
failures, the others are not (httpx.MockTransport stands in for the service)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from jp_primary.client import (
    AsyncClient,
    Client,
    Conflict,
    ConnectionFailed,
    Credentials,
    DigestMismatch,
    NotFound,
    Retry,
    StorageUnavailable,
    ValidationError,
)

FAST = Retry(attempts=4, base=0.0, cap=0.0)
ATTRS = {"jobid": "https://lb.example.org:9000/abc", "key": "abc", "values": []}


def scripted(answers: list[Callable[[httpx.Request], httpx.Response]]) -> tuple[Client, list[str]]:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        return answers.pop(0)(request)

    client = Client(
        "http://jp.test",
        credentials=Credentials(token="t"),
        retry=FAST,
        transport=httpx.MockTransport(handler),
    )
    return client, seen


def answer(
    status: int, body: object, headers: dict[str, str] | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _r: httpx.Response(status, json=body, headers=headers)


def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def test_error_class_comes_from_the_body() -> None:
    cases = [
        ({"error": "NotFound", "detail": "no such job"}, 404, NotFound),
        ({"error": "DigestMismatch", "detail": "sha256 differs"}, 422, DigestMismatch),
        ({"error": "ValidationError", "detail": "jobid: bad"}, 422, ValidationError),
        ({"detail": "behind a proxy"}, 409, Conflict),
    ]
    for body, status, cls in cases:
        client, _ = scripted([answer(status, body)])
        with pytest.raises(cls) as caught:
            client.attributes("abc")
        assert caught.value.status == status
        assert caught.value.detail == body["detail"]


def test_idempotent_call_retried_on_503_and_refused_connections() -> None:
    unavailable = answer(503, {"error": "StorageUnavailable", "detail": "db"}, {"Retry-After": "0"})
    client, seen = scripted([unavailable, refuse, answer(200, ATTRS)])
    assert client.attributes("abc").jobid == ATTRS["jobid"]
    assert seen == ["GET", "GET", "GET"]


def test_retries_end_with_the_last_error() -> None:
    unavailable = answer(503, {"error": "StorageUnavailable", "detail": "db"})
    client, seen = scripted([unavailable] * 4)
    with pytest.raises(StorageUnavailable):
        client.attributes("abc")
    assert len(seen) == 4
    client, seen = scripted([refuse] * 4)
    with pytest.raises(ConnectionFailed):
        client.files("abc")
    assert len(seen) == 4


def test_appending_tags_is_not_retried() -> None:
    client, seen = scripted([answer(503, {"error": "StorageUnavailable", "detail": "db"})])
    with pytest.raises(StorageUnavailable):
        client.add_tags("abc", [("color", "green")])
    assert seen == ["POST"]


def test_backoff_grows_with_jitter_and_respects_retry_after() -> None:
    retry = Retry(attempts=5, base=1.0, cap=8.0)
    waits = [retry.delay(4) for _ in range(200)]
    assert all(0 <= w <= 8.0 for w in waits)
    assert len(set(waits)) > 100
    assert all(retry.delay(0, retry_after=5) >= 5 for _ in range(20))
    assert retry.delay(0, retry_after=100) <= 8.0


def test_async_client_retries_too() -> None:
    answers = [answer(503, {"error": "StorageUnavailable", "detail": "x"}), answer(200, ATTRS)]
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        return answers.pop(0)(request)

    async def go() -> str:
        async with AsyncClient(
            "http://jp.test",
            credentials=Credentials(token="t"),
            retry=FAST,
            transport=httpx.MockTransport(handler),
        ) as client:
            return (await client.attributes("https://lb.example.org:9000/abc")).key or ""

    assert asyncio.run(go()) == "abc"
    assert seen == ["GET", "GET"]
