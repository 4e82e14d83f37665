"""Request metrics as a plain ASGI middleware (cheap: no per-request object graph)."""

from __future__ import annotations

import time
from functools import cache
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter("jp_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("jp_http_request_seconds", "HTTP request latency", ["method", "route"])


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            counter, latency = _children(scope["method"], route, status)
            counter.inc()
            latency.observe(time.perf_counter() - started)


@cache
def _children(method: str, route: str, status: int) -> tuple[Any, Any]:
    # Looking labelled children up takes a lock and hashing on every request: keep them.
    return REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route)
