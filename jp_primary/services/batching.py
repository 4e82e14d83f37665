"""Group commit: requests that arrive while a transaction is running share the next one.

Every registration is its own small transaction otherwise, and transactions are serialised (the
SQLite write lock, PostgreSQL's flush under the change-sequence lock). Taking everything that is
waiting into one transaction keeps each request's answer its own and tied to a durable commit,
while paying for one commit per batch instead of one per request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Feeds submitted items to ``run_batch`` in groups; each item's outcome (a result or an
    exception it raised) goes back to its own submitter."""

    def __init__(
        self,
        run_batch: Callable[[list[T]], Awaitable[Sequence[R | Exception]]],
        max_batch: int = 256,
    ) -> None:
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[R]]] | None = None
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        if self._queue is None or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._work(self._queue))
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        await self._queue.put((item, future))
        return await future

    async def _work(self, queue: asyncio.Queue[tuple[T, asyncio.Future[R]]]) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < self._max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                outcomes = await self._run_batch([item for item, _ in batch])
            except Exception as exc:  # the whole transaction failed: everyone hears it
                outcomes = [exc] * len(batch)
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():  # the submitter went away; its item was still processed
                    continue
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
