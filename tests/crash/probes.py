"""Looking into the service's database from outside, to time a kill inside its transaction.

``write_probe(url)`` yields a function telling whether another connection holds an open write
transaction right now. While a commit is under way, once its bytes are published, the only write
transaction it opens is the one inserting the file row and its derived values: a kill while the
probe says yes interrupts exactly that transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

# A backend has an xid once its transaction wrote something; the probe itself never writes.
_PG_WRITERS = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
)


@contextmanager
def write_probe(database_url: str) -> Iterator[Callable[[], bool]]:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database
        with _sqlite_probe(url.database) as probe:
            yield probe
        return
    engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            yield lambda: bool(conn.execute(_PG_WRITERS).scalar_one())
    finally:
        engine.dispose()


@contextmanager
def _sqlite_probe(path: str) -> Iterator[Callable[[], bool]]:
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)

    def writer_active() -> bool:
        # The service begins every transaction with BEGIN IMMEDIATE (the write lock): if ours
        # cannot take it right now, the service's is open. Ours is released at once.
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return True
            raise
        conn.execute("ROLLBACK")
        return False

    try:
        yield writer_active
    finally:
        conn.close()  # before the kill: the restarted service alone recovers the database
