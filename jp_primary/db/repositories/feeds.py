"""Feeds: subscriptions, their unacknowledged batches, the jobs they sent, and leases.

The feed engine (``jp_primary.feed``) gets ``Feed`` and ``StoredBatch`` dataclasses, never rows.
Reading the change sequence for feeds is in ``feed_values.py``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, insert, or_, text, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, col, select

from jp_primary.db.models import FeedBatchRow, FeedRow, FeedSentJobRow


@dataclass(frozen=True)
class Feed:
    id: str
    owner: str
    destination: str | None
    attributes: list[str]
    conditions: list[dict[str, Any]]
    history: bool
    continuous: bool
    notify_removed: bool
    snapshot_seq: int
    phase: str
    history_after_job: int
    cursor_seq: int
    built_batch: int
    acked_batch: int
    history_done_batch: int | None
    created_at: datetime
    ttl_seconds: int
    expires_at: datetime
    acked_seq: int = 0
    last_delivery_at: datetime | None = None
    last_error: str | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None


@dataclass(frozen=True)
class StoredBatch:
    number: int
    history_done: bool
    body: str  # the JSON list of records, exactly as first cut
    jobs: int
    last_seq: int


_JSON_FIELDS = ("attributes", "conditions")
_SENT = SQLModel.metadata.tables["feed_sent_jobs"]
# The push worker reads and writes a feed's row several times a batch: as plain Core statements
# on the tables (no ORM objects, no synchronisation of an identity map).
_FEEDS = SQLModel.metadata.tables["feeds"]
_BATCHES = SQLModel.metadata.tables["feed_batches"]


def _feed(row: Row[Any]) -> Feed:
    data = dict(row._mapping)
    for name in _JSON_FIELDS:
        data[name] = json.loads(data[name])
    return Feed(**data)


def insert_feed(session: Session, feed: Feed) -> None:
    data = dataclasses.asdict(feed)
    for name in _JSON_FIELDS:
        data[name] = json.dumps(data[name])
    session.add(FeedRow(**data))


def get(session: Session, feed_id: str, *, lock: bool = False) -> Feed | None:
    """The feed; with ``lock`` its row is locked until the transaction ends (PostgreSQL), so
    that two processes never cut the same batch."""
    stmt = sa_select(_FEEDS).where(_FEEDS.c.id == feed_id)
    if lock:
        stmt = stmt.with_for_update()
    row = session.execute(stmt).first()
    return _feed(row) if row else None


def list_feeds(session: Session, owner: str | None) -> list[Feed]:
    stmt = sa_select(_FEEDS).order_by(_FEEDS.c.created_at)
    if owner is not None:
        stmt = stmt.where(_FEEDS.c.owner == owner)
    return [_feed(row) for row in session.execute(stmt)]


def set_fields(session: Session, feed_id: str, **fields: Any) -> None:
    session.execute(update(_FEEDS).where(_FEEDS.c.id == feed_id).values(**fields))


def set_fields_if(
    session: Session, feed_id: str, expected: Mapping[str, Any], **fields: Any
) -> bool:
    """Update the feed only if its columns hold the ``expected`` values (checked and set in one
    statement, e.g. only while a worker holds its lease); False when they do not."""
    return bool(session.execute(_update_if(feed_id, expected, fields)).rowcount)  # type: ignore[attr-defined]


def set_fields_returning(
    session: Session, feed_id: str, expected: Mapping[str, Any], **fields: Any
) -> Feed | None:
    """As ``set_fields_if``, and the feed as it is after the update, its row locked until the
    transaction ends (None: it did not hold the ``expected`` values)."""
    row = session.execute(_update_if(feed_id, expected, fields).returning(*_FEEDS.c)).first()
    return _feed(row) if row else None


def _update_if(feed_id: str, expected: Mapping[str, Any], fields: Mapping[str, Any]) -> Any:
    c = _FEEDS.c
    return (
        update(_FEEDS)
        .where(c.id == feed_id, *(c[name] == value for name, value in expected.items()))
        .values(**fields)
    )


def remove(session: Session, feed_ids: Sequence[str]) -> None:
    if not feed_ids:
        return
    for table in (FeedSentJobRow, FeedBatchRow):
        session.execute(delete(table).where(col(table.feed_id).in_(feed_ids)))
    session.execute(delete(FeedRow).where(col(FeedRow.id).in_(feed_ids)))


def ended_before(session: Session, cutoff: datetime) -> list[str]:
    """Feeds that expired before ``cutoff``: their grace period is over."""
    stmt = select(FeedRow.id).where(col(FeedRow.expires_at) < cutoff)
    return list(session.exec(stmt))


# -- batches ------------------------------------------------------------------------------------


def batch(session: Session, feed_id: str, number: int) -> StoredBatch | None:
    b = _BATCHES.c
    stmt = sa_select(b.number, b.history_done, b.body, b.jobs, b.last_seq).where(
        b.feed_id == feed_id, b.number == number
    )
    row = session.execute(stmt).first()
    return None if row is None else StoredBatch(*row)


def add_batch(session: Session, feed_id: str, stored: StoredBatch, at: datetime) -> None:
    session.execute(
        insert(_BATCHES).values(
            feed_id=feed_id,
            number=stored.number,
            history_done=stored.history_done,
            body=stored.body,
            jobs=stored.jobs,
            last_seq=stored.last_seq,
            created_at=at,
        )
    )


def commit_without_flush_wait(session: Session) -> None:
    """Let this transaction's commit return before its WAL reaches the disk (PostgreSQL's
    ``synchronous_commit = off``, for this transaction only). Only for a transaction whose loss
    in a crash is harmless until a later, ordinary commit (which flushes the WAL up to itself,
    so this one with it); SQLite: nothing to do."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))


def drop_batches_below(session: Session, feed_id: str, number: int) -> None:
    b = _BATCHES.c
    session.execute(delete(_BATCHES).where(b.feed_id == feed_id, b.number < number))


# -- jobs sent on a continuous feed -------------------------------------------------------------


def sent_among(session: Session, feed_id: str, job_ids: Iterable[int]) -> set[int]:
    ids = list(job_ids)
    if not ids:
        return set()
    stmt = select(FeedSentJobRow.job_id).where(
        FeedSentJobRow.feed_id == feed_id, col(FeedSentJobRow.job_id).in_(ids)
    )
    return set(session.exec(stmt))


def add_sent(session: Session, feed_id: str, job_ids: Iterable[int]) -> None:
    rows = [{"feed_id": feed_id, "job_id": job_id} for job_id in job_ids]
    if rows:
        session.connection().execute(insert(_SENT), rows)


def remove_sent(session: Session, feed_id: str, job_ids: Iterable[int]) -> None:
    ids = list(job_ids)
    if ids:
        session.execute(
            delete(FeedSentJobRow).where(
                col(FeedSentJobRow.feed_id) == feed_id, col(FeedSentJobRow.job_id).in_(ids)
            )
        )


# -- leases of push feeds -----------------------------------------------------------------------


def claim(session: Session, worker: str, now: datetime, until: datetime, limit: int) -> list[str]:
    """Lease up to ``limit`` live push feeds nobody holds (or whose lease expired) to ``worker``.

    ``FOR UPDATE SKIP LOCKED`` lets several processes claim at once on PostgreSQL without
    waiting for each other; SQLite serialises writers anyway.
    """
    stmt = (
        select(FeedRow.id)
        .where(
            col(FeedRow.destination).is_not(None),
            col(FeedRow.expires_at) > now,
            col(FeedRow.phase) != "done",
            or_(
                col(FeedRow.lease_owner).is_(None),
                col(FeedRow.lease_until) < now,
                col(FeedRow.lease_owner) == worker,
            ),
        )
        .order_by(col(FeedRow.created_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(session.exec(stmt))
    if ids:
        session.execute(
            update(FeedRow)
            .where(col(FeedRow.id).in_(ids))
            .values(lease_owner=worker, lease_until=until)
        )
    return ids


def renew(session: Session, worker: str, feed_ids: Sequence[str], until: datetime) -> list[str]:
    """Extend ``worker``'s leases; the ids it still holds (others took the rest over)."""
    if not feed_ids:
        return []
    held = list(
        session.exec(
            select(FeedRow.id).where(
                col(FeedRow.id).in_(feed_ids), col(FeedRow.lease_owner) == worker
            )
        )
    )
    if held:
        session.execute(update(FeedRow).where(col(FeedRow.id).in_(held)).values(lease_until=until))
    return held


def release(session: Session, worker: str, feed_ids: Sequence[str]) -> None:
    if feed_ids:
        session.execute(
            update(FeedRow)
            .where(col(FeedRow.id).in_(feed_ids), col(FeedRow.lease_owner) == worker)
            .values(lease_owner=None, lease_until=None)
        )
