"""Talking to one primary storage's feed routes, through the client library (``jp_primary.client``).

Every call the index server makes to a primary goes through here: the library brings the
credentials (token, X.509 certificate or proxy, CAs), the error classes and the retries; this
module turns its errors into one ``PrimaryError`` the feed lifecycle acts on.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from jp_primary.client import AsyncClient, Credentials, Retry
from jp_primary.client.calls import Call
from jp_primary.client.errors import APIError, ClientError
from jp_primary.index.config import FeedSection
from jp_primary.index.wire import ChangesPage

T = TypeVar("T")


class PrimaryError(Exception):
    """A call to a primary failed; ``gone`` when the subscription no longer exists there."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def gone(self) -> bool:
        return self.status in (404, 410)


@dataclass(frozen=True)
class Subscription:
    feed_id: str
    expires_at: datetime | None
    mode: str


def credentials(feed: FeedSection) -> Credentials:
    """Only what the feed's configuration names (no JP_TOKEN or proxy of the environment): an
    index server talks to each primary with the credential configured for it."""
    return Credentials.lookup(
        token=feed.token,
        token_file=feed.token_file,
        cert=feed.cert,
        key=feed.key,
        ca_dir=feed.ca_dir,
        ca_file=feed.ca_file,
        env={},
    )


def _expiry(body: dict[str, Any]) -> datetime | None:
    value = body.get("expires_at")
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _json(response: httpx.Response) -> Any:
    return response.json()


class PrimaryClient:
    def __init__(
        self,
        feed: FeedSection,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.feed = feed
        self._timeout = timeout
        self._transport = transport  # tests: a fake primary
        self._client: AsyncClient | None = None

    def _library(self) -> AsyncClient:
        # Built on first use: a bad credential file is then a failure of this feed (reported
        # in its state), not of the server's start.
        if self._client is None:
            self._client = AsyncClient(
                self.feed.url,
                credentials=credentials(self.feed),
                # Long polls wait up to pull_wait seconds before answering.
                timeout=self._timeout + self.feed.pull_wait,
                # The lifecycle has its own backoff; one quick retry covers a blip.
                retry=Retry(attempts=2, base=0.2, cap=1.0),
                transport=self._transport,
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def _call(self, what: str, call: Awaitable[T]) -> T:
        try:
            return await call
        except APIError as exc:
            raise PrimaryError(f"{what}: {exc}", exc.status) from None
        except ClientError as exc:
            raise PrimaryError(f"{what}: {type(exc).__name__}: {exc}") from None

    async def subscribe(self, request: dict[str, Any]) -> Subscription:
        try:
            client = self._library()
        except ClientError as exc:
            raise PrimaryError(f"credentials: {exc}") from None
        body = dict(request)
        attributes, conditions = body.pop("attributes"), body.pop("conditions")
        feed = await self._call("subscribe", client.subscribe(attributes, conditions, **body))
        return Subscription(feed.feed_id, feed.expires_at, feed.mode or "")

    async def refresh(self, feed_id: str) -> datetime | None:
        return _expiry(await self._call("refresh", self._library().refresh_feed(feed_id)))

    async def status(self, feed_id: str) -> dict[str, Any]:
        return await self._call("status", self._library().feed(feed_id))

    async def cancel(self, feed_id: str) -> None:
        await self._call("cancel", self._library().delete_feed(feed_id))

    async def changes(
        self, feed_id: str, since: str | None, limit: int, wait: float
    ) -> ChangesPage:
        # The raw page, not the library's typed one: values are kept exactly as the primary
        # sent them (its timestamps' text included), as pushed batches are.
        params = [("limit", str(limit)), ("wait", str(wait))]
        if since is not None:
            params.append(("since", since))
        path = f"/v1/feeds/{quote(feed_id, safe='')}/changes"
        body = await self._call("changes", self._library().run(Call("GET", path, _json, params)))
        return ChangesPage.model_validate(body)
