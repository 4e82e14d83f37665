"""The change sequence: strictly increasing in commit order, no gap ever visible to a reader."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy import text

from jp_primary.db.repositories import identities, jobs, values
from jp_primary.db.session import create_db_engine, new_session
from tests.helpers import new_jobid

WRITERS = 4
BATCHES = 25


def _make_job(engine) -> int:  # type: ignore[no-untyped-def]
    with new_session(engine) as session:
        owner = identities.identity_id(session, "/CN=seq-test")
        jobid = new_jobid()
        key = jobid.rsplit("/", 1)[1]
        jobs.insert(
            session, key=key, jobid=jobid, owner_id=owner, registrar_id=owner, at=datetime.now(UTC)
        )
        session.commit()
        record = jobs.by_key(session, key)
        assert record is not None
        return record.id


def test_readers_never_see_a_gap_or_a_late_lower_seq(database_url: str) -> None:
    engine = create_db_engine(database_url, pool_size=WRITERS + 2)
    job_id = _make_job(engine)
    with new_session(engine) as session:
        start = values.last_seq(session)
    done = threading.Event()
    problems: list[str] = []

    def writer(n: int) -> None:
        for i in range(BATCHES):
            with new_session(engine) as session:
                now = datetime.now(UTC)
                batch = [values.NewValue(f"w{n}", str(i * 3 + k), "USER", now) for k in range(3)]
                values.append(session, job_id, batch)
                session.commit()

    def reader() -> None:
        seen = start
        while not done.is_set() or seen < start + WRITERS * BATCHES * 3:
            with new_session(engine) as session:
                rows = (
                    session.execute(
                        text("SELECT seq FROM attribute_values WHERE seq > :s ORDER BY seq"),
                        {"s": seen},
                    )
                    .scalars()
                    .all()
                )
                below = session.execute(
                    text("SELECT count(*) FROM attribute_values WHERE seq <= :s AND seq > :b"),
                    {"s": seen, "b": start},
                ).scalar_one()
            if below != seen - start:
                problems.append(f"{below} values at or below {seen}, expected {seen - start}")
            expected = list(range(seen + 1, seen + 1 + len(rows)))
            if list(rows) != expected:
                problems.append(f"gap after {seen}: {list(rows)[:5]}")
            if rows:
                seen = rows[-1]

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    watcher.join(timeout=60)
    engine.dispose()
    assert not watcher.is_alive()
    assert problems == []
