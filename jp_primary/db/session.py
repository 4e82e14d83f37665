"""Engine and sessions for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread
from sqlalchemy import Engine
from sqlmodel import Session

from jp_primary.attributes.registry import TypeRegistry
from jp_primary.engines import create_sql_engine

T = TypeVar("T")


def create_db_engine(url: str, pool_size: int = 10) -> Engine:
    return create_sql_engine(url, pool_size)


# Where a session carries the attribute type registry: every write of attribute values stores
# each value's index key (db/repositories/values.py), and every path that writes values opens its
# session through ``Database`` — so the registry rides along instead of being passed through
# every service and helper that appends a value.
TYPES_KEY = "jp_attribute_types"


def new_session(engine: Engine, types: TypeRegistry | None = None) -> Session:
    session = Session(engine, expire_on_commit=False)
    if types is not None:
        session.info[TYPES_KEY] = types
    return session


class Database:
    """Runs one unit of work in a worker thread with its own session: committed when the
    function returns, rolled back when it raises. The event loop never waits on SQL.

    ``types`` (the plugins' attribute types) keys the values written; without it only the
    system attributes are typed (tests that write no plugin-derived values)."""

    def __init__(self, engine: Engine, types: TypeRegistry | None = None) -> None:
        self.engine = engine
        self.types = types
        # As many units of work at once as the pool keeps connections: more would each open an
        # overflow connection and close it again on return (a new PostgreSQL backend process
        # and its start-up for one transaction); they wait for a pooled one instead.
        size = getattr(engine.pool, "size", None)
        self._slots = size() if callable(size) else None
        self._limiter: anyio.CapacityLimiter | None = None

    async def run(self, fn: Callable[[Session], T]) -> T:
        if self._slots is not None and self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self._slots)
        return await anyio.to_thread.run_sync(self.run_sync, fn, limiter=self._limiter)

    def run_sync(self, fn: Callable[[Session], T]) -> T:
        with new_session(self.engine, self.types) as session:
            try:
                result = fn(session)
                session.commit()
            except BaseException:
                session.rollback()
                raise
            return result
