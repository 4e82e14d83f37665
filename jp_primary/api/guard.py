"""Request guards that act before any route reads a body (plain ASGI, one per process).

FastAPI reads and parses a JSON body *before* it runs the route's dependencies, so a policy
dependency alone would let an anonymous client make the server buffer a body of any size. This
middleware runs first:

- **Authentication before the body.** A request that carries a body (``Content-Length`` > 0 or
  ``Transfer-Encoding``) is authenticated from its headers and TLS chain alone; without valid
  credentials it gets 401 and ``Connection: close`` and not one byte of its body is read. Every
  route that takes a body needs an identity; the anonymous routes (health, metrics) take none.
  The identity is kept in the scope (``jp_identity``) for the route's policy. The one exception
  are the web view's sign-in and sign-out forms (``POST /ui/sign-in``, ``/ui/sign-out``), whose
  small, capped bodies need no identity.
- **Body cap.** Every route except the two byte-upload PUTs (``PUT /v1/uploads/{id}``,
  ``PUT /v1/jobs/{key}/files/{class}``, which stream to storage with their own size limit) gets
  at most ``JP_MAX_JSON_BODY`` bytes (``POST /v1/files/bulk``, many small files in one request:
  ``JP_MAX_BULK_BODY``): a larger ``Content-Length`` gets 413 at once; a chunked body is counted
  while it arrives and cut off with 413 as soon as it passes the cap.
- **Requests in flight.** At most ``JP_MAX_REQUESTS_IN_FLIGHT`` requests work in one process at
  once; more get 503 with ``Retry-After``. Stalled or idle connections hold no slot, and neither
  does a request while it waits for body bytes from its client (the body timeout ends those).
"""

from __future__ import annotations

import json
import re

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jp_primary.api.errors import error_response
from jp_primary.auth.authenticate import IDENTITY_KEY, credentials_from_scope
from jp_primary.errors import JPError, Unauthenticated

# The web view's sign-in form carries the token itself, and signing out must work with an expired
# one: their bodies are capped like any other, but there is no identity to check before reading.
ANONYMOUS_FORMS = frozenset({"/ui/sign-in", "/ui/sign-out"})
BULK_FILES_ROUTE = "/v1/files/bulk"
_UPLOAD_ROUTES = re.compile(r"^/v1/(uploads/[^/]+|jobs/[^/]+/files/[^/]+)$")
_NO_CREDENTIALS = (
    "authentication required before sending a body: a bearer token, a client certificate or a "
    "trusted front end's verified DN"
)


def streams_large_body(method: str, path: str) -> bool:
    """The routes whose body goes to storage (bounded by ``JP_MAX_FILE_SIZE`` instead)."""
    return method == "PUT" and _UPLOAD_ROUTES.match(path) is not None


async def send_error(
    send: Send,
    status: int,
    error: str,
    detail: str,
    headers: dict[str, str] | None = None,
    close: bool = True,
) -> None:
    """An ``{"error", "detail"}`` response straight to ASGI (the body was not read: close)."""
    body = json.dumps({"error": error, "detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    if close:
        raw.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value)
    return None


class RequestGuard:
    def __init__(
        self, app: ASGIApp, max_body: int, max_in_flight: int, max_bulk_body: int | None = None
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.max_bulk_body = max_bulk_body if max_bulk_body is not None else max_body
        self.max_in_flight = max_in_flight
        self.in_flight = 0  # requests in this process
        self.waiting = 0  # of which waiting for body bytes from their client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_flight - self.waiting >= self.max_in_flight:
            await send_error(
                send,
                503,
                "ServiceUnavailable",
                "the server is busy with other requests; retry after Retry-After seconds",
                {"Retry-After": "1"},
            )
            return
        self.in_flight += 1

        async def waiting_receive() -> Message:
            self.waiting += 1  # waiting for the client is no work: it holds no slot
            try:
                return await receive()
            finally:
                self.waiting -= 1

        try:
            await self._guarded(scope, waiting_receive, send)
        finally:
            self.in_flight -= 1

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        length_header = _header(scope, b"content-length")
        chunked = _header(scope, b"transfer-encoding") is not None
        try:
            length = int(length_header) if length_header is not None else 0
        except ValueError:
            length = 0  # the HTTP parser refuses such requests before they get here
        if length <= 0 and not chunked:
            await self.app(scope, receive, send)
            return
        anonymous_form = scope["method"] == "POST" and scope["path"] in ANONYMOUS_FORMS
        if not anonymous_form and not await self._authenticated(scope, send):
            return
        if streams_large_body(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        cap = self._cap(scope)
        if length > cap:
            await send_error(send, 413, "PayloadTooLarge", self._too_large(cap, length))
            return
        await self._capped(scope, receive, send, cap)

    def _cap(self, scope: Scope) -> int:
        if scope["method"] == "POST" and scope["path"] == BULK_FILES_ROUTE:
            return self.max_bulk_body
        return self.max_body

    async def _authenticated(self, scope: Scope, send: Send) -> bool:
        try:
            identity = scope["app"].state.services.authenticator.authenticate(
                credentials_from_scope(scope)
            )
            if identity is None:
                raise Unauthenticated(_NO_CREDENTIALS)
        except JPError as exc:
            # Rendered as the exception handlers render it (under /ui/ a page: a form posted
            # after its cookie expired goes to sign-in); the body was not read: close.
            response = error_response(Request(scope), exc)
            response.headers["connection"] = "close"
            await response(scope, _no_body, send)
            return False
        scope[IDENTITY_KEY] = identity
        return True

    def _too_large(self, cap: int, size: int | None) -> str:
        got = f"{size} bytes" if size is not None else "more"
        return (
            f"the request body is limited to {cap} bytes (got {got}); send less (fewer files "
            "in a bulk request), or upload file bytes with PUT /v1/uploads/{upload_id}"
        )

    async def _capped(self, scope: Scope, receive: Receive, send: Send, cap: int) -> None:
        received = 0
        refused = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    refused = True
                    if not started:
                        await send_error(send, 413, "PayloadTooLarge", self._too_large(cap, None))
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 is the answer; whatever the route makes of the cut is dropped
            started = True
            await send(message)

        await self.app(scope, counting_receive, guarded_send)
