"""The access log (``JP_ACCESS_LOG=1``): one line per request on the ``jp_primary.access`` logger.

A line holds the method, the path (never the query string, which may carry names or secrets),
the status, the duration, the TCP peer and the authenticated subject (``-`` for anonymous or
refused requests). No header is logged, so neither the Authorization header nor any token or
cookie reaches the log. Text the client chose (path, subject) is escaped, so one request is
always one line.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jp_primary.api.guard import IDENTITY_KEY

log = logging.getLogger("jp_primary.access")


def _printable(text: str) -> str:
    # Escape control characters and quotes (no log line injection), keep the rest readable.
    return text.encode("unicode_escape").decode("ascii").replace('"', '\\"')


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0  # 0: the connection ended before any response

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        except BaseException:
            status = status or 500
            raise
        finally:
            identity = scope.get(IDENTITY_KEY)
            client = scope.get("client")
            log.info(
                '%s "%s %s" %d %.1fms subject="%s"',
                f"{client[0]}:{client[1]}" if client else "-",
                scope["method"],
                _printable(scope["path"]),
                status,
                (time.perf_counter() - started) * 1000,
                _printable(identity.subject) if identity is not None else "-",
            )
