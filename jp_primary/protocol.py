"""The uvicorn HTTP protocols of every listener (plain and TLS): connection limits in one place.

uvicorn closes idle keep-alive connections but never one that stalls before its headers are
complete or in the middle of a body, and its parsers buffer headers of any size. These
subclasses add, per connection:

- a **header timeout** (``JP_HEADER_TIMEOUT``): from the connection (after the TLS handshake),
  or from the first byte of a keep-alive connection's next request, to the end of the headers;
- a **body idle timeout** (``JP_BODY_TIMEOUT``): a body that stops flowing for that long closes
  the connection (the route sees a disconnect). Time during which the server itself paused
  reading (the route is busy) does not count;
- a **header size cap** (``JP_MAX_HEADER_SIZE``): the request line and headers together; more
  gets 431 and the connection is closed as soon as the cap is passed, so an endless header
  stream costs at most the cap plus one read;
- a **connection cap** (``JP_MAX_CONNECTIONS``): past it, the connection that has waited longest
  for its headers is closed to make room (stalled clients are shed first).

One timer per connection, re-armed only when it fires. The TLS listener uses the same classes:
``TLSHandshakeMixin`` runs the handshake (bounded by the header timeout, refusals logged with
reason and peer) and ``TLSExtensionMixin`` hands the verified client chain to the application;
both do nothing on a plain connection. ``jp-primary serve`` uses the httptools parser (a
dependency); the h11 class exists for tests and installations without httptools and gets the
same limits (h11's own ``max_incomplete_event_size`` is set to the header cap as well).
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import json
import logging
import ssl
from asyncio import sslproto
from dataclasses import dataclass
from typing import Any, Literal, cast

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from jp_primary.auth.tlsproto import ClientCertContextFactory, TLSExtensionMixin, handshake_failure
from jp_primary.config import ServerSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float
    body_timeout: float
    max_header_size: int
    max_connections: int

    @classmethod
    def from_settings(cls, server: ServerSettings) -> ConnectionLimits:
        return cls(
            header_timeout=server.header_timeout,
            body_timeout=server.body_timeout,
            max_header_size=int(server.max_header_size),
            max_connections=server.max_connections,
        )


@functools.cache
def connection_limits() -> ConnectionLimits:
    """The limits of this process, read once from the settings (each worker reads its own)."""
    return ConnectionLimits.from_settings(ServerSettings())


def _too_large_body(limit: int) -> bytes:
    return json.dumps(
        {
            "error": "RequestHeaderFieldsTooLarge",
            "detail": f"the request line and headers are limited to {limit} bytes; send fewer "
            "or shorter headers",
        }
    ).encode()


_431_HEAD = [(b"content-type", b"application/json"), (b"connection", b"close")]


def _headers_too_large(limit: int) -> bytes:
    body = _too_large_body(limit)
    head = b"HTTP/1.1 431 Request Header Fields Too Large\r\n" + b"".join(
        k + b": " + v + b"\r\n" for k, v in [*_431_HEAD, (b"content-length", b"%d" % len(body))]
    )
    return head + b"\r\n" + body


async def _headers_too_large_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = _too_large_body(connection_limits().max_header_size)
    headers = [*_431_HEAD, (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 431, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ConnectionLimitsMixin:
    """Timeouts and caps on top of a uvicorn HTTP protocol (see the module docstring)."""

    # Provided by uvicorn's protocol classes.
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any
    flow: Any
    connections: set[Any]
    app: Any

    _limits: ConnectionLimits
    _timer: asyncio.TimerHandle | None = None
    _head_started: float | None = None  # when the current request's head began; None: not in it
    _head_bytes = 0
    _last_rx = 0.0

    def _awaiting_head(self) -> bool:
        raise NotImplementedError

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._limits = limits = connection_limits()
        self._head_started = self._last_rx = self.loop.time()
        self._head_bytes = 0
        self._arm(min(limits.header_timeout, limits.body_timeout))
        if len(self.connections) > limits.max_connections:
            self._shed()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        now = self._last_rx = self.loop.time()
        if self._awaiting_head():
            if self._head_started is None:
                self._head_started, self._head_bytes = now, 0
            self._head_bytes += len(data)
        cycle = self.cycle
        super().data_received(data)  # type: ignore[misc]
        if not self._awaiting_head():
            self._head_started = None
        elif self._head_started is None or self.cycle is not cycle:
            # The next request began (or several completed) within this read.
            self._head_started, self._head_bytes = now, len(data)
        elif self._head_bytes > self._limits.max_header_size and not self.transport.is_closing():
            self.transport.write(_headers_too_large(self._limits.max_header_size))
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        if self._head_bytes > self._limits.max_header_size and self._head_started is not None:
            # h11 refuses an over-long head as a generic bad request: say what it is.
            self.transport.write(_headers_too_large(self._limits.max_header_size))
            self.transport.close()
            return
        super().send_400_response(msg)  # type: ignore[misc]

    # The one timer of the connection.

    def _arm(self, delay: float) -> None:
        self._timer = self.loop.call_later(max(delay, 0.01), self._check)

    def _receiving_body(self) -> bool:
        cycle = self.cycle
        return (
            cycle is not None
            and not cycle.response_complete
            and cycle.more_body
            and not cycle.disconnected
        )

    def _check(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        limits = self._limits
        now = self.loop.time()
        if self._head_started is not None and self._awaiting_head():
            if now - self._head_started >= limits.header_timeout:
                self._close("headers incomplete after %.0f s", limits.header_timeout)
                return
            self._arm(self._head_started + limits.header_timeout - now)
        elif self._receiving_body() and not self.flow.read_paused:
            if now - self._last_rx >= limits.body_timeout:
                self._close("no body bytes for %.0f s", limits.body_timeout)
                return
            self._arm(self._last_rx + limits.body_timeout - now)
        else:
            # Nothing to watch (the route runs, the server paused reading, or keep-alive idle,
            # which uvicorn's own timer ends): look again soon, counting from now.
            self._last_rx = now
            self._arm(min(limits.header_timeout, limits.body_timeout) / 4)

    def _close(self, why: str, seconds: float) -> None:
        peer = self.transport.get_extra_info("peername")
        log.info("closing a stalled connection from %s: " + why, peer, seconds)
        self.transport.close()

    def _shed(self) -> None:
        """Over the connection cap: close the connection waiting longest for its headers."""
        waiting = [
            c
            for c in self.connections
            if isinstance(c, ConnectionLimitsMixin)
            and c._head_started is not None
            and c._awaiting_head()
        ]
        victim = min(waiting, key=lambda c: c._head_started or 0.0, default=self)
        log.warning(
            "over %d connections: closing one that waited %.1f s for its headers",
            self._limits.max_connections,
            self.loop.time() - (victim._head_started or self.loop.time()),
        )
        victim.transport.close()


class TLSHandshakeMixin:
    """The TLS handshake run by the protocol itself (asyncio's ``SSLProtocol`` put between the
    socket and this protocol when the connection is made), not by the server. So a refused
    handshake is logged with its reason and the peer address (asyncio and uvloop drop those
    silently), and the handshake is bounded by the header timeout. Plain listeners have no
    context and skip all of this.
    """

    tls_context: ssl.SSLContext | None = None
    loop: asyncio.AbstractEventLoop

    _handshaking = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.tls_context is None or self._handshaking:  # plain, or the handshake succeeded
            super().connection_made(transport)  # type: ignore[misc]
            return
        # Synchronously, before any byte is read: the TLS protocol sits between the socket and
        # this one and calls connection_made again with the TLS transport once it is done.
        self._handshaking = True
        raw = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport subclasses
        waiter = self.loop.create_future()
        tls = sslproto.SSLProtocol(
            self.loop,
            self,  # type: ignore[arg-type]
            self.tls_context,
            waiter,
            server_side=True,
            ssl_handshake_timeout=connection_limits().header_timeout,  # type: ignore[arg-type]
        )
        raw.set_protocol(tls)
        tls.connection_made(raw)
        peer = raw.get_extra_info("peername")
        waiter.add_done_callback(lambda done: _log_refusal(done, peer))


def _log_refusal(done: asyncio.Future[None], peer: Any) -> None:
    exc = None if done.cancelled() else done.exception()
    if exc is not None:
        log.warning("TLS handshake with %s refused: %s", _address(peer), handshake_failure(exc))


def _address(peer: Any) -> str:
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer)


@dataclass(frozen=True)
class TLSListener:
    """uvicorn's ``http`` setting for a TLS listener (given to uvicorn *instead of* its ``ssl_*``
    settings): builds our protocol with the listener's context, which then does the handshake.
    A picklable value, so that ``workers > 1`` get it; each process builds its context once."""

    context: ClientCertContextFactory
    http: Literal["httptools", "h11"] = "httptools"

    def __call__(self, **kwargs: Any) -> asyncio.Protocol:
        cls = H11ServerProtocol if self.http == "h11" else _httptools_class()
        protocol = cls(**kwargs)
        protocol.tls_context = _context(self.context)
        return protocol


@functools.cache
def _context(factory: ClientCertContextFactory) -> ssl.SSLContext:
    return factory.build()


class LimitedH11Protocol(ConnectionLimitsMixin, H11Protocol):
    _head_too_large = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # h11 parses a head that arrived whole, whatever its size: measure each request's head
        # as h11 hands it over, and answer 431 instead of running the application. h11 holds
        # one request at a time per connection, so one flag is enough.
        next_event = self.conn.next_event
        limit = connection_limits().max_header_size

        def measured() -> Any:
            event = next_event()
            if isinstance(event, h11.Request):
                size = len(event.method) + len(event.target) + 11
                size += sum(len(name) + len(value) + 4 for name, value in event.headers)
                self._head_too_large = size > limit
            return event

        self.conn.next_event = measured  # type: ignore[method-assign]
        inner = self.app

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if self._head_too_large:
                self._head_too_large = False
                await _headers_too_large_app(scope, receive, send)
                return
            await inner(scope, receive, send)

        self.app = app

    def _awaiting_head(self) -> bool:
        # h11 waits for a request in IDLE; keep-alive idle (uvicorn's timer armed) is not ours.
        return self.conn.their_state is h11.IDLE and self.timeout_keep_alive_task is None


class H11ServerProtocol(TLSHandshakeMixin, TLSExtensionMixin, LimitedH11Protocol):
    """h11 parser (pure Python), connection limits, ``tls`` scope extension on TLS listeners."""


try:  # httptools comes with uvicorn[standard] and is a dependency of its own
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class LimitedHttpToolsProtocol(ConnectionLimitsMixin, HttpToolsProtocol):
        _in_head = True

        def _awaiting_head(self) -> bool:
            return self._in_head

        def on_message_begin(self) -> None:
            self._in_head = True
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._head_started = None
            size = len(self.url) + sum(len(k) + len(v) + 4 for k, v in self.headers)
            if size <= self._limits.max_header_size:
                super().on_headers_complete()
                return
            app, self.app = self.app, _headers_too_large_app  # answer 431, close, read nothing
            try:
                super().on_headers_complete()
            finally:
                self.app = app

    class HttpToolsServerProtocol(TLSHandshakeMixin, TLSExtensionMixin, LimitedHttpToolsProtocol):
        """httptools parser (the fast one), connection limits, ``tls`` scope extension."""

except ImportError:  # pragma: no cover - depends on the installation
    pass


# For uvicorn's ``http`` setting (import strings: workers import them in their own process).
HTTPTOOLS_PROTOCOL = "jp_primary.protocol:HttpToolsServerProtocol"
H11_PROTOCOL = "jp_primary.protocol:H11ServerProtocol"


def _httptools_class() -> type[H11ServerProtocol]:
    return HttpToolsServerProtocol  # type: ignore[return-value]  # same interface


def http_protocol(http: Literal["httptools", "h11"] | None = None) -> str:
    """The protocol class: httptools unless told otherwise (or not installed)."""
    if http is None:
        http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return {"httptools": HTTPTOOLS_PROTOCOL, "h11": H11_PROTOCOL}[http]


def protocol_kwargs(http: Literal["httptools", "h11"] | None = None) -> dict[str, Any]:
    """uvicorn settings every listener (plain or TLS) gets: the protocol class, h11's head cap."""
    return {
        "http": http_protocol(http),
        "h11_max_incomplete_event_size": connection_limits().max_header_size,
    }
