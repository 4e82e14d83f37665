"""Pooled connections: a connection that died while idle in the pool is replaced before it is
handed out, a busy one is not pinged, and units of work never open more connections than the
pool keeps."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import anyio
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlmodel import Session

from jp_primary import engines
from jp_primary.db.session import Database, create_db_engine
from tests.conftest import create_pg_database


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    url, drop = create_pg_database()
    engine = create_db_engine(url, pool_size=1)
    try:
        yield engine
    finally:
        engine.dispose()
        drop()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    seen: list[object] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_conn: object) -> bool:
        seen.append(dbapi_conn)
        return ping(dbapi_conn)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return seen


def test_a_connection_that_died_while_idle_is_replaced(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engines, "IDLE_PING_SECONDS", 0.0)  # every pooled connection is "idle"
    first = _backend_pid(pg_engine)
    # The server ends the pooled connection (a restart, an idle timeout on the way).
    admin = create_engine(pg_engine.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    admin.dispose()
    # The next unit of work gets a live connection instead of an error.
    db = Database(pg_engine)
    assert db.run_sync(lambda s: s.connection().execute(text("SELECT 1")).scalar_one()) == 1
    assert _backend_pid(pg_engine) != first


def test_a_connection_back_from_work_just_now_is_not_pinged(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings = _pings(pg_engine, monkeypatch)
    monkeypatch.setattr(engines, "IDLE_PING_SECONDS", 3600.0)
    _backend_pid(pg_engine)
    _backend_pid(pg_engine)
    assert pings == []
    monkeypatch.setattr(engines, "IDLE_PING_SECONDS", 0.0)
    _backend_pid(pg_engine)
    assert len(pings) == 1


def test_units_of_work_use_no_more_connections_than_the_pool_keeps(database_url: str) -> None:
    engine = create_db_engine(database_url, pool_size=2)
    db = Database(engine)
    most = 0
    lock = threading.Lock()

    def work(session: Session) -> None:
        nonlocal most
        session.connection()  # checked out from the pool
        with lock:
            most = max(most, engine.pool.checkedout())  # type: ignore[attr-defined]
        time.sleep(0.02)  # overlap with the others

    async def many() -> None:
        async with anyio.create_task_group() as group:
            for _ in range(8):
                group.start_soon(db.run, work)

    try:
        anyio.run(many)
    finally:
        engine.dispose()
    assert 1 <= most <= 2
