"""Engine and sessions for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session, create_engine

from jp_primary.attributes.registry import TypeRegistry

T = TypeVar("T")


def _sqlite_pragmas(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
    # WAL + NORMAL survives a killed process (only power loss may drop the last transactions);
    # the busy timeout makes concurrent writers wait instead of failing.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin_immediate(conn: Any) -> None:
    # Take the write lock at BEGIN: a deferred transaction that reads and then writes can fail
    # with "database is locked" under concurrency instead of waiting.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_db_engine(url: str, pool_size: int = 10) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "isolation_level": None, "timeout": 30},
            pool_size=pool_size,
            max_overflow=2 * pool_size,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


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

    async def run(self, fn: Callable[[Session], T]) -> T:
        return await anyio.to_thread.run_sync(self.run_sync, fn)

    def run_sync(self, fn: Callable[[Session], T]) -> T:
        with new_session(self.engine, self.types) as session:
            try:
                result = fn(session)
                session.commit()
            except BaseException:
                session.rollback()
                raise
            return result
