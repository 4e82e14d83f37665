"""Defects 6 and 7 (issue 14) for both HTTP parsers: the protocol classes under a real uvicorn
server in a thread (a small ASGI app; no database involved), with short timeouts."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from jp_primary.protocol import connection_limits, protocol_kwargs

TIMEOUT = 0.6


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = str(size).encode()
    headers = [(b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(params=["httptools", "h11"])
def port(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setenv("JP_HEADER_TIMEOUT", str(TIMEOUT))
    monkeypatch.setenv("JP_BODY_TIMEOUT", str(TIMEOUT))
    monkeypatch.setenv("JP_MAX_HEADER_SIZE", "8KiB")
    connection_limits.cache_clear()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    config = uvicorn.Config(
        echo_app,
        host="127.0.0.1",
        port=free,
        log_level="warning",
        lifespan="off",
        **protocol_kwargs(request.param),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield free
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        connection_limits.cache_clear()


def _exchange(port: int, data: bytes, wait: float = 5.0) -> tuple[bytes, float]:
    """Send ``data``; read until the server closes. Returns (answer, seconds until closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        started = time.monotonic()
        with contextlib.suppress(OSError):
            sock.sendall(data)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
        return answer, time.monotonic() - started


def test_defect_6_normal_requests_pass(port: int) -> None:
    request = b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello"
    answer, _ = _exchange(port, request)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith(b"5")


def test_defect_6_stalled_headers_are_closed(port: int) -> None:
    for partial in (b"", b"GET / HT", b"GET / HTTP/1.1\r\nHost: x\r\n"):
        answer, elapsed = _exchange(port, partial)
        assert answer == b""
        assert TIMEOUT * 0.8 <= elapsed < TIMEOUT + 2


def test_defect_6_stalled_bodies_are_closed(port: int) -> None:
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
    answer, elapsed = _exchange(port, head + b"only part")
    assert answer == b""
    assert TIMEOUT * 0.8 <= elapsed < TIMEOUT + 2


def test_defect_6_a_slow_but_flowing_body_is_not_cut(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n")
        for byte in b"abcd":  # four pauses of 2/3 of the timeout: 1.6 timeouts in all
            time.sleep(TIMEOUT * 2 / 3)
            sock.sendall(bytes([byte]))
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")


def test_defect_7_headers_over_the_cap_get_431(port: int) -> None:
    big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n"
    answer, elapsed = _exchange(port, big)
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert b"limited to 8192 bytes" in answer
    assert elapsed < TIMEOUT
    fits = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Fits: " + b"a" * 7000
    answer, _ = _exchange(port, fits + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ")
