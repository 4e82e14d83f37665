"""The index's database sessions: read-only units of work on SQLite take no write lock (queries
do not wait behind the feeds' writes) and may not write; the page cache and mmap settings reach
every connection."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection, event

from jp_primary.index import migrate
from jp_primary.index.database import IndexDatabase
from jp_primary.index.session import create_index_engine
from jp_primary.index.tables import feeds


def _feed(name: str) -> dict[str, Any]:
    return {"name": name, "source": "http://p", "fingerprint": "f", "mode": "pull", "phase": "new"}


def _names(conn: Connection) -> list[str]:
    return list(conn.execute(sa.select(feeds.c.name).order_by(feeds.c.name)).scalars())


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[tuple[IndexDatabase, Path]]:
    path = tmp_path / "index.sqlite"
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    engine = create_index_engine(url, pool_size=1, cache_mb=48, mmap_mb=16)

    def short_wait(dbapi_conn: Any, _record: Any) -> None:
        # A unit of work that (wrongly) waits for the lock fails within a second, not thirty.
        dbapi_conn.execute("PRAGMA busy_timeout=1000")

    event.listen(engine, "connect", short_wait)
    db = IndexDatabase(engine)
    db.run_sync(lambda conn: conn.execute(feeds.insert().values(**_feed("committed"))))
    yield db, path
    db.close()


def test_a_read_does_not_wait_behind_a_writer_and_sees_the_committed_state(
    sqlite_db: tuple[IndexDatabase, Path],
) -> None:
    db, path = sqlite_db
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # a feed's batch holding the write lock
        writer.execute(
            "INSERT INTO index_feeds (name, source, fingerprint, mode, phase, history_done, "
            "failures, subscriptions, records) VALUES ('pending', 's', 'f', 'pull', 'new', 0, 0, "
            "0, 0)"
        )
        assert db.read_sync(_names) == ["committed"]
        with pytest.raises(sa.exc.OperationalError, match="locked"):
            db.run_sync(_names)  # a read-write unit of work still takes the lock (and waits)
        writer.execute("COMMIT")
    finally:
        writer.close()
    assert db.read_sync(_names) == ["committed", "pending"]


def test_a_read_may_not_write_and_the_connection_writes_again_afterwards(
    sqlite_db: tuple[IndexDatabase, Path],
) -> None:
    db, _path = sqlite_db

    def write(conn: Connection) -> None:
        conn.execute(feeds.insert().values(**_feed("sneaked")))

    with pytest.raises(sa.exc.OperationalError, match="readonly"):
        db.read_sync(write)
    db.run_sync(lambda conn: conn.execute(feeds.insert().values(**_feed("later"))))
    assert db.read_sync(_names) == ["committed", "later"]


def test_the_cache_and_mmap_sizes_reach_the_connections(
    sqlite_db: tuple[IndexDatabase, Path],
) -> None:
    db, _path = sqlite_db

    def sizes(conn: Connection) -> tuple[int, int]:
        cache = conn.exec_driver_sql("PRAGMA cache_size").scalar_one()
        mmap = conn.exec_driver_sql("PRAGMA mmap_size").scalar_one()
        return int(cache), int(mmap)

    assert db.read_sync(sizes) == (-48 * 1024, 16 * 1024 * 1024)


def test_a_read_on_either_database(index_db_url: str) -> None:
    db = IndexDatabase(create_index_engine(index_db_url))
    try:
        assert db.read_sync(lambda conn: conn.execute(sa.text("SELECT 1")).scalar_one()) == 1
    finally:
        db.close()
