"""Engines for the index's own database (SQLite by default, PostgreSQL by URL).

On SQLite two things differ from the primary's engines (``jp_primary.engines``):

- a page cache of ``cache_mb`` per connection and up to ``mmap_mb`` of the file memory-mapped
  (``server.sqlite_cache_mb`` / ``sqlite_mmap_mb`` in the TOML): a query walks index pages at
  random, SQLite's default cache (2 MB) keeps few of a large index's;
- a read-only unit of work (``IndexDatabase.read``) begins a *deferred* transaction with the
  connection in ``query_only`` mode, instead of ``BEGIN IMMEDIATE``: in WAL mode a reader never
  needs the write lock, so queries no longer wait behind the feeds' writes (and a write there
  fails at once instead of upgrading a stale snapshot).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, event

from jp_primary import engines
from jp_primary.engines import create_sql_engine

READ_ONLY = "jp_index_read_only"  # the execution option of a read-only unit of work
DEFAULT_CACHE_MB = 64
DEFAULT_MMAP_MB = 0


def create_index_engine(
    url: str,
    pool_size: int = 5,
    cache_mb: int = DEFAULT_CACHE_MB,
    mmap_mb: int = DEFAULT_MMAP_MB,
) -> Engine:
    engine = create_sql_engine(url, pool_size)
    if engine.dialect.name != "sqlite":
        return engine

    def sizes(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute(f"PRAGMA cache_size=-{int(cache_mb) * 1024}")  # negative: KiB
        dbapi_conn.execute(f"PRAGMA mmap_size={int(mmap_mb) * 1024 * 1024}")

    event.listen(engine, "connect", sizes)
    # Replaces the shared engines' BEGIN IMMEDIATE with one that knows read-only units of work.
    event.remove(engine, "begin", engines._sqlite_begin_immediate)
    event.listen(engine, "begin", _sqlite_begin)
    event.listen(engine, "commit", _sqlite_writable)
    event.listen(engine, "rollback", _sqlite_writable)
    return engine


def _sqlite_begin(conn: Connection) -> None:
    if conn.get_execution_options().get(READ_ONLY):
        conn.exec_driver_sql("PRAGMA query_only=ON")
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_writable(conn: Connection) -> None:
    # The connection goes back to the pool: the next unit of work may write.
    if conn.get_execution_options().get(READ_ONLY):
        conn.connection.dbapi_connection.execute("PRAGMA query_only=OFF")  # type: ignore[union-attr]
