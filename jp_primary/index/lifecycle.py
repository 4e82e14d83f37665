"""The feed lifecycle of the original JPIS, made robust (reference §2.2).

Per configured feed, one task: subscribe (``POST /v1/feeds``), refresh at half the remaining
lifetime, and, on repeated failure or when the primary no longer knows the subscription,
subscribe again *with history* -- the repeats that brings are dropped by ``(job, name, seq)``.
Pull feeds also fetch ``/changes`` here; push feeds are delivered to ``receiver.py``. The place
(pull token, last batch) lives in the database, so a restarted server resumes where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from jp_primary.index import feedstate
from jp_primary.index.apply import Applier, StaleFeed, apply_batch
from jp_primary.index.config import FeedSection, IndexConfig
from jp_primary.index.database import IndexDatabase
from jp_primary.index.feedstate import FeedState
from jp_primary.index.primary import PrimaryClient, PrimaryError

log = logging.getLogger(__name__)
TICK = 1.0
MAX_BACKOFF = 30.0


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes for what was stored as UTC.
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment


def push_path(name: str, secret: str) -> str:
    return f"/v1/push/{name}/{secret}"


class FeedLifecycle:
    def __init__(
        self,
        config: IndexConfig,
        db: IndexDatabase,
        applier: Applier,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.db = db
        self.applier = applier
        self.clients = {f.name: PrimaryClient(f, transport=transport) for f in config.feeds}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, run: bool = True) -> None:
        """Record the configured feeds; unless ``run`` is false, start their tasks."""
        await self.db.run(self._register)
        if not run:
            return
        self._tasks = [
            asyncio.create_task(self._run(feed), name=f"feed {feed.name}")
            for feed in self.config.feeds
        ]

    def _register(self, conn: Any) -> None:
        for feed in self.config.feeds:
            wanted = feed.fingerprint(self.config.feed_attributes(feed))
            feedstate.ensure(conn, feed.name, feed.url, wanted, feed.mode)
        feedstate.forget_unconfigured(conn, [f.name for f in self.config.feeds])

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for client in self.clients.values():
            await client.close()

    async def _state(self, name: str) -> FeedState:
        state = await self.db.run(lambda conn: feedstate.get(conn, name))
        assert state is not None
        return state

    async def _update(self, name: str, **values: Any) -> None:
        await self.db.run(lambda conn: feedstate.update(conn, name, **values))

    async def _run(self, feed: FeedSection) -> None:
        while True:
            try:
                await self.step(feed)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("feed %s: unexpected failure; retrying", feed.name)
                await asyncio.sleep(TICK)

    async def step(self, feed: FeedSection) -> None:
        state = await self._state(feed.name)
        now = utcnow()
        retry_at = _aware(state.retry_at)
        if retry_at is not None and now < retry_at:
            await asyncio.sleep(min((retry_at - now).total_seconds(), TICK))
            return
        if state.remote_id is None:
            await self._subscribe(feed, state)
            return
        expires_at, refresh_at = _aware(state.expires_at), _aware(state.refresh_at)
        if expires_at is not None and now >= expires_at:
            await self._resubscribe(feed, state, "the subscription expired before a refresh")
            return
        if refresh_at is not None and now >= refresh_at:
            await self._refresh(feed, state)
            return
        if feed.mode == "pull":
            await self._pull(feed, state, refresh_at)
        else:
            await asyncio.sleep(TICK)

    async def _subscribe(self, feed: FeedSection, state: FeedState) -> None:
        # Subscribing again (after a failure, an expiry) always asks for history: whatever
        # was missed comes back, and the repeats are dropped by (job, name, seq).
        history = feed.history or state.subscriptions > 0
        secret = secrets.token_urlsafe(24)
        request: dict[str, Any] = {
            "attributes": self.config.feed_attributes(feed),
            "conditions": [c.wire() for c in feed.conditions],
            "history": history,
            "continuous": feed.continuous,
            "ttl_seconds": feed.ttl_seconds,
            "notify_removed": True,
        }
        if feed.mode == "push":
            # The receiver must know the secret before the first batch can arrive.
            await self._update(feed.name, secret=secret)
            request["destination"] = (
                f"{self.config.server.public_url}{push_path(feed.name, secret)}"
            )
        try:
            sub = await self.clients[feed.name].subscribe(request)
        except PrimaryError as exc:
            await self._failed(feed, state, f"subscribe: {exc}", backoff=True)
            return
        now = utcnow()
        expires = sub.expires_at
        await self._update(
            feed.name,
            remote_id=sub.feed_id,
            phase="history" if history else "live",
            history_done=not history,
            expires_at=expires,
            refresh_at=now + (expires - now) / 2 if expires else None,
            retry_at=None,
            failures=0,
            subscriptions=state.subscriptions + 1,
            subscribed_at=now,
            last_batch=None,
            pull_token=None,
        )
        log.info("feed %s: subscribed to %s as %s", feed.name, feed.url, sub.feed_id)

    async def _refresh(self, feed: FeedSection, state: FeedState) -> None:
        assert state.remote_id is not None
        client = self.clients[feed.name]
        try:
            expires = await client.refresh(state.remote_id)
        except PrimaryError as exc:
            if exc.gone:
                await self._resubscribe(feed, state, f"refresh: {exc}")
            else:
                await self._failed(feed, state, f"refresh: {exc}")
            return
        now = utcnow()
        lag = state.remote_lag
        with contextlib.suppress(PrimaryError, ValueError, TypeError):
            body = await client.status(state.remote_id)
            found = body.get("lag_seconds", body.get("lag"))
            lag = float(found) if found is not None else lag
        await self._update(
            feed.name,
            expires_at=expires,
            refresh_at=now + (expires - now) / 2 if expires else None,
            failures=0,
            remote_lag=lag,
            phase="live" if state.history_done else "history",
        )

    async def _pull(self, feed: FeedSection, state: FeedState, until: datetime | None) -> None:
        assert state.remote_id is not None
        wait = feed.pull_wait
        if until is not None:
            wait = max(0.0, min(wait, (until - utcnow()).total_seconds()))
        try:
            page = await self.clients[feed.name].changes(
                state.remote_id, state.pull_token, feed.pull_limit, wait
            )
        except PrimaryError as exc:
            if exc.gone:
                await self._resubscribe(feed, state, f"changes: {exc}")
            else:
                await self._failed(feed, state, f"changes: {exc}", backoff=True)
            return
        remote_id = state.remote_id

        def apply(conn: Any) -> None:
            apply_batch(
                conn,
                self.applier,
                feed.name,
                page.records,
                utcnow(),
                history_done=page.history_done,
                remote_id=remote_id,
                pull_token=page.next,
            )

        with contextlib.suppress(StaleFeed):  # re-subscribed meanwhile: the page is void
            await self.db.run(apply)
        if state.failures:
            await self._update(feed.name, failures=0)

    async def _failed(
        self, feed: FeedSection, state: FeedState, error: str, backoff: bool = False
    ) -> None:
        """Count a failure; ``backoff``: wait before the next call (subscribe, pull), else
        retry the refresh soon. ``max_failures`` in a row give the subscription up."""
        failures = state.failures + 1
        log.warning("feed %s: %s (failure %d)", feed.name, error, failures)
        now = utcnow()
        delay = timedelta(seconds=min(2.0 ** min(failures, 10), MAX_BACKOFF))
        changes: dict[str, Any] = {
            "failures": failures,
            "last_error": error[:2000],
            "last_error_at": now,
            "phase": "failing",
        }
        if state.remote_id is not None and failures >= feed.max_failures:
            await self._cancel(feed, state.remote_id)
            changes |= feedstate.RESET | {"phase": "failing", "failures": 0}
        elif backoff:
            changes["retry_at"] = now + delay
        else:  # a failed refresh: try again soon, well before the subscription expires
            changes["refresh_at"] = now + min(delay, timedelta(seconds=TICK * 5))
        if state.remote_id is None:
            changes["retry_at"] = now + delay
        await self._update(feed.name, **changes)

    async def _resubscribe(self, feed: FeedSection, state: FeedState, why: str) -> None:
        log.warning("feed %s: %s; subscribing again with history", feed.name, why)
        if state.remote_id is not None:
            await self._cancel(feed, state.remote_id)
        await self._update(
            feed.name,
            **feedstate.RESET,
            last_error=why[:2000],
            last_error_at=utcnow(),
            retry_at=None,
        )

    async def _cancel(self, feed: FeedSection, remote_id: str) -> None:
        with contextlib.suppress(PrimaryError):  # best effort: it expires anyway
            await self.clients[feed.name].cancel(remote_id)
