"""Feeds to index servers: who may do what with a feed, on top of the feed engine."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from jp_primary.auth.identity import Identity, Role
from jp_primary.db.repositories.feeds import Feed
from jp_primary.errors import Forbidden, InvalidInput, NotFound
from jp_primary.feed import metrics, tokens
from jp_primary.feed.engine import FeedEngine, FeedState, PullAnswer, build_engine, utcnow
from jp_primary.feed.spec import Subscription, qualified_attributes

MAX_WAIT = 60.0
PULL_POLL = 0.2


@dataclass(frozen=True)
class FeedRequest:
    """``POST /v1/feeds`` as the API parsed it."""

    attributes: list[str]
    conditions: list[dict[str, Any]]
    history: bool
    continuous: bool
    destination: str | None = None
    ttl_seconds: int | None = None
    notify_removed: bool = False


@dataclass(frozen=True)
class FeedLimits:
    default_ttl: int = 3600
    max_ttl: int = 7 * 86400


__all__ = ["FeedLimits", "FeedRequest", "FeedService", "FeedState", "build_engine"]


class FeedService:
    def __init__(self, engine: FeedEngine, limits: FeedLimits) -> None:
        self.engine = engine
        self.limits = limits

    async def subscribe(self, caller: Identity, request: FeedRequest) -> Feed:
        if not (request.history or request.continuous):
            raise InvalidInput(
                "a feed needs history, continuous or both: set history and/or continuous to true"
            )
        ttl = request.ttl_seconds or self.limits.default_ttl
        if ttl > self.limits.max_ttl:
            raise InvalidInput(
                f"ttl_seconds may be at most {self.limits.max_ttl}; refresh the feed instead"
            )
        if request.destination is not None:
            _check_destination(request.destination)
        subscription = Subscription(
            attributes=qualified_attributes(request.attributes),
            conditions=request.conditions,
            history=request.history,
            continuous=request.continuous,
            ttl_seconds=ttl,
            destination=request.destination,
            notify_removed=request.notify_removed,
        )
        return await self.engine.subscribe(caller.subject, subscription, utcnow())

    async def list_feeds(self, caller: Identity) -> list[FeedState]:
        owner = None if caller.has(Role.ADMIN) else caller.subject
        now = utcnow()
        return [await self.engine.state(f, now) for f in await self.engine.feeds_of(owner)]

    async def state(self, caller: Identity, feed_id: str) -> FeedState:
        feed = await self._own(caller, feed_id, admin_too=True)
        return await self.engine.state(feed, utcnow())

    async def refresh(self, caller: Identity, feed_id: str) -> datetime:
        feed = await self._own(caller, feed_id, admin_too=False)
        return await self.engine.refresh(feed, utcnow())

    async def cancel(self, caller: Identity, feed_id: str) -> None:
        await self._own(caller, feed_id, admin_too=True)
        await self.engine.cancel(feed_id)
        metrics.forget(feed_id)

    async def changes(
        self, caller: Identity, feed_id: str, since: str | None, limit: int, wait: float
    ) -> PullAnswer:
        """The batch after ``since``; with ``wait``, until one arrives or ``wait`` passes."""
        found = await self.engine.find(feed_id)
        if found is not None and found.owner != caller.subject:
            if caller.has(Role.ADMIN):
                raise Forbidden("only the feed's subscriber may read its changes")
            raise NotFound(f"no feed {feed_id!r} of yours")
        start = since if since is not None else tokens.issue(feed_id, 0)
        deadline = time.monotonic() + min(max(wait, 0.0), MAX_WAIT)
        while True:
            answer = await self.engine.db.run(
                lambda s: self.engine.pull_sync(s, feed_id, since, limit, utcnow(), caller.subject)
            )
            if answer.records or answer.next != start or time.monotonic() >= deadline:
                return answer
            await asyncio.sleep(min(PULL_POLL, max(0.0, deadline - time.monotonic())))

    async def _own(self, caller: Identity, feed_id: str, *, admin_too: bool) -> Feed:
        feed = await self.engine.feed(feed_id)
        if feed.owner == caller.subject or (admin_too and caller.has(Role.ADMIN)):
            return feed
        if caller.has(Role.ADMIN):
            raise Forbidden("only the feed's subscriber may do this")
        raise NotFound(f"no feed {feed_id!r} of yours")


def _check_destination(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidInput(
            "destination must be an http:// or https:// URL of the index server's receiver"
        )
