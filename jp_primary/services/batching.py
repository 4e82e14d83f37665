"""Group commit: requests that arrive while a transaction is running share the next one.

Every registration is its own small transaction otherwise, and transactions are serialised (the
SQLite write lock, PostgreSQL's flush under the change-sequence lock). Taking everything that is
waiting into one transaction keeps each request's answer its own and tied to a durable commit,
while paying for one commit per batch instead of one per request.

One item must never fail the others: when a batch's transaction fails, ``isolating`` splits it in
halves and runs each again, down to the single item that fails, which alone hears the error. A
failure that no item causes (the database is unreachable) is reported to all at once instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

T = TypeVar("T")
R = TypeVar("R")

RunBatch = Callable[[list[T]], Awaitable[Sequence[R | Exception]]]


def _always(_exc: Exception) -> bool:
    return True


def database_item_caused(exc: Exception) -> bool:
    """Whether a failed group transaction may be one item's fault (worth isolating): not when
    the database cannot be reached or is busy, which no item causes."""
    return not isinstance(exc, OperationalError | InterfaceError | PoolTimeout)


async def isolating(
    run_batch: RunBatch[T, R],
    items: list[T],
    item_caused: Callable[[Exception], bool] = _always,
) -> list[R | Exception]:
    """``run_batch(items)``; if it raises an error an item may have caused, the halves again
    (recursively), so only failing items get the error and every other item its own outcome.
    With k failing items among n this costs at most about 2k·log2(n) extra transactions."""
    try:
        return list(await run_batch(items))
    except Exception as exc:
        if len(items) == 1 or not item_caused(exc):
            return [exc] * len(items)
    middle = len(items) // 2
    first = await isolating(run_batch, items[:middle], item_caused)
    return first + await isolating(run_batch, items[middle:], item_caused)


class Batcher(Generic[T, R]):
    """Feeds submitted items to ``run_batch`` in groups; each item's outcome (a result or an
    exception it raised) goes back to its own submitter."""

    def __init__(
        self,
        run_batch: RunBatch[T, R],
        max_batch: int = 256,
        item_caused: Callable[[Exception], bool] = _always,
    ) -> None:
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._item_caused = item_caused
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
            items = [item for item, _ in batch]
            outcomes = await isolating(self._run_batch, items, self._item_caused)
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
