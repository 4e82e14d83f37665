"""Engines for the index's own database (SQLite by default, PostgreSQL by URL).

On SQLite the index's engines add to the shared ones (``jp_primary.engines``):

- a page cache of ``cache_mb`` per connection and up to ``mmap_mb`` of the file memory-mapped
  (``server.sqlite_cache_mb`` / ``sqlite_mmap_mb`` in the TOML): a query walks index pages at
  random, SQLite's default cache (2 MB) keeps few of a large index's;
- its read-only units of work (``IndexDatabase.read``) carry ``engines.READ_ONLY``: a deferred
  transaction in ``query_only`` mode instead of ``BEGIN IMMEDIATE``, so queries no longer wait
  behind the feeds' writes (and a write there fails at once instead of upgrading a stale
  snapshot).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event

from jp_primary.engines import READ_ONLY, create_sql_engine

__all__ = ["READ_ONLY", "create_index_engine"]

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
    return engine
