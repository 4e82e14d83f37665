"""The push worker: leases push feeds in the database and delivers their batches over HTTP.

One asyncio task per leased feed, so one batch per feed is in flight at a time and the feeds do
not wait for each other. A batch is acknowledged by any 2xx within the delivery timeout; only
then does the feed's cursor advance (``FeedEngine.ack_and_next_sync``, guarded by the lease).
Anything else is retried with exponential backoff and full jitter; later batches wait, so order
is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import httpx
from sqlmodel import Session

from jp_primary.config import FeedSettings
from jp_primary.db.repositories import feeds, values
from jp_primary.db.repositories.feeds import StoredBatch
from jp_primary.feed import metrics
from jp_primary.feed.backoff import retry_delay
from jp_primary.feed.cutter import HistoryPlan, ReadAhead
from jp_primary.feed.engine import FeedEngine, PushBatch, utcnow
from jp_primary.feed.readahead import HistoryReader

log = logging.getLogger(__name__)
CLAIM_LIMIT = 1000


@dataclass(frozen=True)
class DispatchSettings:
    lease_seconds: float = 30.0
    delivery_timeout: float = 10.0
    retry_base: float = 1.0
    retry_cap: float = 300.0
    poll_interval: float = 0.1

    @property
    def timeout(self) -> float:
        # A delivery must end well inside the lease it started under (renewed at each batch).
        return min(self.delivery_timeout, self.lease_seconds * 0.8)


def dispatch_settings(feed: FeedSettings) -> DispatchSettings:
    return DispatchSettings(
        lease_seconds=feed.lease_seconds,
        delivery_timeout=feed.delivery_timeout,
        retry_base=feed.retry_base,
        retry_cap=feed.retry_cap,
        poll_interval=feed.poll_interval,
    )


class FeedDispatcher:
    def __init__(
        self,
        engine: FeedEngine,
        settings: DispatchSettings,
        client: httpx.AsyncClient | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.engine = engine
        self.db = engine.db
        self.settings = settings
        self.client = client or httpx.AsyncClient(
            timeout=settings.timeout, headers={"Content-Type": "application/json"}
        )
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.held: set[str] = set()
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.idle_at: dict[str, int] = {}  # feed -> head seq when it last had nothing to send
        self.retry_at: dict[str, float] = {}  # feed -> monotonic time of its next try
        self.tried: dict[str, int] = {}  # feed -> batch number last tried
        self.readers: dict[str, HistoryReader] = {}  # feed -> its history read ahead

    async def run(self) -> None:
        """Work push feeds until cancelled; give the leases back on the way out."""
        last_claim = -1e9
        try:
            while True:
                now = time.monotonic()
                if now - last_claim >= min(1.0, self.settings.lease_seconds / 3):
                    await self._guarded(self._claim)
                    last_claim = now
                await self._guarded(self._schedule)
                await asyncio.sleep(self.settings.poll_interval)
        finally:
            for task in self.tasks.values():
                task.cancel()
            for reader in self.readers.values():
                reader.stop()
            for task in list(self.tasks.values()):
                with contextlib.suppress(BaseException):
                    await task
            with contextlib.suppress(Exception):
                held = list(self.held)
                await self.db.run(lambda s: feeds.release(s, self.worker_id, held))
            await self.client.aclose()

    async def _guarded(self, step: Callable[[], Awaitable[None]]) -> None:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("feed worker step failed; trying again")
            await asyncio.sleep(self.settings.poll_interval)

    async def _claim(self) -> None:
        """Renew the leases held, claim free feeds, note the head: one transaction."""
        now = utcnow()
        until = now + timedelta(seconds=self.settings.lease_seconds)
        held = list(self.held)

        def run(session: Session) -> tuple[list[str], list[str], int]:
            kept = feeds.renew(session, self.worker_id, held, until)
            claimed = feeds.claim(session, self.worker_id, now, until, CLAIM_LIMIT)
            return kept, claimed, values.last_seq(session)

        kept, claimed, head = await self.db.run(run)
        metrics.HEAD.set(head)
        for lost in self.held - set(kept):
            self._drop(lost)
        for feed_id in claimed:
            if feed_id not in self.held:
                log.info("feed %s: leased by %s", feed_id, self.worker_id)
            self.held.add(feed_id)

    async def _schedule(self) -> None:
        if not self.held:
            return
        head = await self.db.run(values.last_seq)
        metrics.HEAD.set(head)
        now = time.monotonic()
        for feed_id in list(self.held):
            task = self.tasks.get(feed_id)
            if task is not None and not task.done():
                continue
            if self.retry_at.get(feed_id, 0.0) > now:
                continue
            if self.idle_at.get(feed_id) == head:
                continue
            self.tasks[feed_id] = asyncio.create_task(self._work(feed_id, head))

    def _drop(self, feed_id: str) -> None:
        self.held.discard(feed_id)
        for memo in (self.idle_at, self.retry_at, self.tried):
            memo.pop(feed_id, None)
        task = self.tasks.pop(feed_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        self._stop_reading(feed_id)
        metrics.forget(feed_id)

    async def _work(self, feed_id: str, head: int) -> None:
        """Deliver the feed's batches one after the other until it has nothing more."""
        try:
            push: PushBatch | bool | None = await self.db.run(lambda s: self._next(s, feed_id))
            while isinstance(push, PushBatch):
                # An acknowledgement and the next batch share one transaction.
                push = await self._deliver(push)
            if push is False:
                self._drop(feed_id)
                return
            if push is None:
                self.idle_at[feed_id] = head
                await self._note_lag(feed_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("feed %s: delivery step failed", feed_id)
            self.retry_at[feed_id] = time.monotonic() + self.settings.retry_base

    def _next(
        self, session: Session, feed_id: str, known: StoredBatch | None = None
    ) -> PushBatch | None | Literal[False]:
        now = utcnow()
        until = now + timedelta(seconds=self.settings.lease_seconds)
        return self.engine.next_push_sync(session, feed_id, self.worker_id, now, until, known)

    def _stop_reading(self, feed_id: str) -> None:
        reader = self.readers.pop(feed_id, None)
        if reader is not None:
            reader.stop()

    def _cut_ahead(self, session: Session, push: PushBatch) -> StoredBatch | None:
        return self.engine.cut_ahead_sync(session, push, self.worker_id, utcnow())

    async def _ahead(self, push: PushBatch) -> StoredBatch | None:
        """The batch after ``push``, stored. In a history it was usually read and stored
        already, by the feed's ``HistoryReader`` (started here, from where ``push`` ends)."""
        feed_id, feed = push.feed.id, push.feed
        reader = self.readers.get(feed_id)
        if reader is None and feed.phase == "history" and feed.built_batch == push.batch.number:
            stream = self.engine.job_stream(feed)

            async def read(start: int) -> HistoryPlan:
                return await self.db.run(
                    lambda s: self.engine.plan_ahead_sync(s, push, start, stream)
                )

            async def store(plan: HistoryPlan, built: int) -> ReadAhead | None:
                return await self.db.run(
                    lambda s: self.engine.store_ahead_sync(
                        s, push, self.worker_id, plan, built, utcnow()
                    )
                )

            reader = HistoryReader(read, store, feed.history_after_job, push.batch.number)
            self.readers[feed_id] = reader
        if reader is not None:
            batch = await reader.next()
            if batch is not None and batch.number == push.batch.number + 1:
                return batch
            # Read to its end, or the feed stands elsewhere: cut as it comes from here on.
            self._stop_reading(feed_id)
        return await self.db.run(lambda s: self._cut_ahead(s, push))

    def _ack_and_next(
        self, session: Session, push: PushBatch, known: StoredBatch | None
    ) -> PushBatch | None | Literal[False]:
        now = utcnow()
        until = now + timedelta(seconds=self.settings.lease_seconds)
        return self.engine.ack_and_next_sync(session, push, self.worker_id, now, until, known)

    async def _deliver(self, push: PushBatch) -> PushBatch | bool | None:
        """The next batch (None: nothing more, False: the lease is lost) after delivering
        ``push``; True when it failed and waits for its retry."""
        feed_id, number = push.feed.id, push.batch.number
        if self.tried.get(feed_id) == number:
            metrics.RETRIES.labels(feed_id).inc()
        self.tried[feed_id] = number
        assert push.feed.destination is not None
        # Cut the following batch while this one travels (stored, so nothing is lost if this
        # one fails; it is sent only after this one is acknowledged). In a history it was read
        # already: what is left is storing it, which holds the feed's row only briefly.
        ahead = asyncio.create_task(self._ahead(push))
        known: StoredBatch | None = None
        try:
            error = await self._post(push.feed.destination, push.body())
        finally:
            with contextlib.suppress(Exception):
                known = await ahead  # committed: stored as it is in memory
        now = utcnow()
        if error is None:
            # The acknowledgement and the next batch share one transaction.
            following = await self.db.run(lambda s: self._ack_and_next(s, push, known))
            if following is not False:
                metrics.DELIVERED.labels(feed_id).inc()
                self.retry_at.pop(feed_id, None)
            return following
        metrics.FAILURES.labels(feed_id).inc()
        self._stop_reading(feed_id)  # read from where the batch after this one ends: redone
        attempts = push.feed.attempts + 1
        delay = retry_delay(attempts, self.settings.retry_base, self.settings.retry_cap)
        retry_at = now + timedelta(seconds=delay)
        await self.db.run(
            lambda s: self.engine.fail_sync(s, feed_id, self.worker_id, error, retry_at)
        )
        self.retry_at[feed_id] = time.monotonic() + delay
        log.info(
            "feed %s: batch %d not delivered (%s); retry in %.1f s", feed_id, number, error, delay
        )
        return True

    async def _post(self, url: str, body: bytes) -> str | None:
        """None when the receiver acknowledged ``body`` in time, else what went wrong."""
        timeout = self.settings.timeout
        try:
            async with asyncio.timeout(timeout):
                response = await self.client.post(url, content=body, timeout=timeout)
        except TimeoutError:
            return f"no answer within {timeout:g} s"
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code} from the receiver"

    async def _note_lag(self, feed_id: str) -> None:
        feed = await self.db.run(lambda s: feeds.get(s, feed_id))
        if feed is None:
            return
        state = await self.engine.state(feed, utcnow())
        metrics.LAG_SEQ.labels(feed_id).set(state.lag_seq)
        metrics.LAG_SECONDS.labels(feed_id).set(state.lag_seconds)
