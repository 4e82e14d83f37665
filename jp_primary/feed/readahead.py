"""Reading a feed's history ahead of its delivery, one batch after the other.

A history batch can only be read once the previous one's end is known, and reading is most of a
history's cost: so the reader reads the next batches back to back, while earlier ones are stored,
sent and acknowledged, and keeps at most ``depth`` of them waiting. A read batch is only a plan;
it is stored if the feed then stands where the read began (``FeedEngine.cut_ahead_sync``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from jp_primary.feed.cutter import HistoryPlan

log = logging.getLogger(__name__)
ReadFrom = Callable[[int], Awaitable[HistoryPlan | None]]


class HistoryReader:
    def __init__(self, read_from: ReadFrom, start: int, depth: int = 2) -> None:
        self._read_from = read_from
        self._ready: asyncio.Queue[HistoryPlan | None] = asyncio.Queue(depth)
        self._task = asyncio.create_task(self._run(start))

    async def _run(self, start: int) -> None:
        while True:
            try:
                plan = await self._read_from(start)
            except Exception:
                log.exception("reading a history ahead failed; its batches are cut as they come")
                plan = None
            await self._ready.put(plan)
            if plan is None or plan.exhausted:
                return
            start = plan.after

    async def next(self) -> HistoryPlan | None:
        """The next batch read, in order; None when there is none (the history is read to its
        end, the feed left its history, or a read failed: the batch is then cut afresh)."""
        if self._ready.empty() and self._task.done():
            return None
        return await self._ready.get()

    def stop(self) -> None:
        self._task.cancel()
