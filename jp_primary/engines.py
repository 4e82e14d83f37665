"""SQLAlchemy engines for SQLite (embedded default) and PostgreSQL, shared by the service's
database (``db/session.py``) and the index server's own (``index/session.py``), which must not
import the service's ``db`` package."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection


def _sqlite_pragmas(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
    # WAL + NORMAL survives a killed process (only power loss may drop the last transactions);
    # the busy timeout makes concurrent writers wait instead of failing.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


# The execution option of a unit of work that only reads (the index server's queries): on SQLite
# it begins a deferred transaction in query_only mode. In WAL mode a reader never needs the write
# lock, so it does not queue behind writers, and a write in it fails at once.
READ_ONLY = "jp_read_only"


def _sqlite_begin(conn: Connection) -> None:
    if conn.get_execution_options().get(READ_ONLY):
        conn.exec_driver_sql("PRAGMA query_only=ON")
        conn.exec_driver_sql("BEGIN")
    else:
        # Take the write lock at BEGIN: a deferred transaction that reads and then writes can
        # fail with "database is locked" under concurrency instead of waiting.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_writable(conn: Connection) -> None:
    # The connection goes back to the pool: the next unit of work may write.
    if conn.get_execution_options().get(READ_ONLY):
        conn.connection.dbapi_connection.execute("PRAGMA query_only=OFF")  # type: ignore[union-attr]


# A pooled PostgreSQL connection idle this long is pinged before it is handed out: one that died
# meanwhile (a server restart, an idle timeout on the way) is replaced instead of failing the
# unit of work that gets it. Busy connections go back and out again within milliseconds and are
# not pinged: ``pool_pre_ping`` cost a round trip on every checkout, several per request.
IDLE_PING_SECONDS = 1.0
_IDLE_SINCE = "jp_idle_since"


def _ping_if_idle(engine: Engine) -> None:
    def checkin(_dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def checkout(
        dbapi_conn: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return  # new, or back in the pool just now
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool discards this connection and checks out another (SQLAlchemy's
            # "pessimistic disconnect handling" through the checkout event).
            raise DisconnectionError(f"pooled connection found dead: {exc}") from exc
        if not alive:
            raise DisconnectionError("pooled connection found dead")

    event.listen(engine, "checkin", checkin)
    event.listen(engine, "checkout", checkout)


def create_sql_engine(url: str, pool_size: int) -> Engine:
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
        event.listen(engine, "begin", _sqlite_begin)
        event.listen(engine, "commit", _sqlite_writable)
        event.listen(engine, "rollback", _sqlite_writable)
        return engine
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size)
    _ping_if_idle(engine)
    return engine
