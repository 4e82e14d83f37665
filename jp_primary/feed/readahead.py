"""Reading and storing a feed's history ahead of its delivery, one batch after the other.

A history batch can only be read once the previous one's end is known, and reading is most of a
history's cost: so the reader reads the next batches back to back, and stores each as the feed's
next (``FeedEngine.store_ahead_sync``: only if the feed still stands where the read began) while
it reads the one after, and while earlier ones are sent and acknowledged; a delivery then only
sends. At most ``depth`` stored batches wait in memory, and one read (the rest of the history is
not read yet).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from jp_primary.db.repositories.feeds import StoredBatch
from jp_primary.feed.cutter import HistoryPlan, ReadAhead

log = logging.getLogger(__name__)
# Reads the batch after a job id.
Read = Callable[[int], Coroutine[Any, Any, HistoryPlan]]
# Stores a batch read after a batch number (None: the feed stands elsewhere, nothing stored).
Store = Callable[[HistoryPlan, int], Coroutine[Any, Any, ReadAhead | None]]


class HistoryReader:
    def __init__(self, read: Read, store: Store, start: int, built: int, depth: int = 2) -> None:
        self._read = read
        self._store = store
        self._ready: asyncio.Queue[StoredBatch | None] = asyncio.Queue(depth)
        self._task = asyncio.create_task(self._guarded(start, built))

    async def _guarded(self, start: int, built: int) -> None:
        try:
            await self._run(start, built)
        except Exception:
            log.exception("reading a history ahead failed; its batches are cut as they come")
            await self._ready.put(None)

    async def _run(self, start: int, built: int) -> None:
        plan = await self._read(start)
        following: asyncio.Task[HistoryPlan] | None = None
        try:
            while True:
                # The read after this one needs only where this one ends: both at once.
                following = None if plan.exhausted else asyncio.create_task(self._read(plan.after))
                step = await self._store(plan, built)
                if step is None:
                    await self._ready.put(None)
                    return
                if step.batch is not None:
                    await self._ready.put(step.batch)
                    built = step.batch.number
                if following is None:
                    return
                plan = await following
        finally:
            if following is not None:
                following.cancel()

    async def next(self) -> StoredBatch | None:
        """The next batch stored, in order; None when there is none (the history is read to
        its end, the feed left its history or stands elsewhere, or a read failed: the batch is
        then cut as it comes)."""
        if self._ready.empty() and self._task.done():
            return None
        return await self._ready.get()

    def stop(self) -> None:
        self._task.cancel()
