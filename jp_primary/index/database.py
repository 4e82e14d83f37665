"""One unit of work on the index's database, in a worker thread (the event loop never waits)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread
from sqlalchemy import Connection, Engine

from jp_primary.index.session import READ_ONLY

T = TypeVar("T")


class IndexDatabase:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def run(self, fn: Callable[[Connection], T]) -> T:
        return await anyio.to_thread.run_sync(self.run_sync, fn)

    def run_sync(self, fn: Callable[[Connection], T]) -> T:
        """Committed when ``fn`` returns, rolled back when it raises."""
        with self.engine.begin() as conn:
            return fn(conn)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        return await anyio.to_thread.run_sync(self.read_sync, fn)

    def read_sync(self, fn: Callable[[Connection], T]) -> T:
        """``fn`` only reads: on SQLite it neither takes nor waits for the write lock (it sees
        the database as of its first statement) and may not write."""
        with self.engine.connect() as conn:
            conn.execution_options(**{READ_ONLY: True})
            with conn.begin():
                return fn(conn)

    def close(self) -> None:
        self.engine.dispose()
