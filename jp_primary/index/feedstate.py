"""The subscriptions' rows (``index_feeds``): where each feed stands, read and written as one
small dataclass. All SQL of the feed lifecycle is here; applying records is ``apply.py``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from jp_primary.index.tables import feed_jobs, feeds, jobs, values


@dataclass(frozen=True)
class FeedState:
    name: str
    source: str
    fingerprint: str
    mode: str
    phase: str
    remote_id: str | None = None
    secret: str | None = None
    expires_at: datetime | None = None
    refresh_at: datetime | None = None
    retry_at: datetime | None = None
    history_done: bool = False
    last_batch: int | None = None
    pull_token: str | None = None
    failures: int = 0
    subscriptions: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_delivery_at: datetime | None = None
    last_seq: int | None = None
    records: int = 0
    remote_lag: float | None = None
    subscribed_at: datetime | None = None


_FIELDS = [f.name for f in dataclasses.fields(FeedState)]


def _state(row: Any) -> FeedState:
    return FeedState(**{name: getattr(row, name) for name in _FIELDS})


def get(conn: Connection, name: str, lock: bool = False) -> FeedState | None:
    query = sa.select(feeds).where(feeds.c.name == name)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    return _state(row) if row is not None else None


def all_states(conn: Connection) -> list[FeedState]:
    return [_state(r) for r in conn.execute(sa.select(feeds).order_by(feeds.c.name))]


def ensure(conn: Connection, name: str, source: str, fingerprint: str, mode: str) -> FeedState:
    """The row of a configured feed; one whose request changed starts over (phase ``new``)."""
    current = get(conn, name, lock=True)
    if current is None:
        conn.execute(
            feeds.insert().values(
                name=name,
                source=source,
                fingerprint=fingerprint,
                mode=mode,
                phase="new",
                history_done=False,
                failures=0,
                subscriptions=0,
                records=0,
            )
        )
    elif current.fingerprint != fingerprint:
        update(conn, name, source=source, fingerprint=fingerprint, mode=mode, **RESET)
    state = get(conn, name)
    assert state is not None
    return state


# What subscribing again forgets: the old subscription's id, cursor and batch numbers.
RESET: dict[str, Any] = {
    "remote_id": None,
    "secret": None,
    "phase": "new",
    "expires_at": None,
    "refresh_at": None,
    "last_batch": None,
    "pull_token": None,
    "history_done": False,
}


def update(conn: Connection, name: str, **values: Any) -> None:
    conn.execute(feeds.update().where(feeds.c.name == name).values(**values))


def forget_unconfigured(conn: Connection, configured: list[str]) -> list[FeedState]:
    """Drop the feeds no longer in the configuration, and the jobs only they delivered (their
    subscriptions on the primaries expire, unrefreshed)."""
    gone = [s for s in all_states(conn) if s.name not in configured]
    for state in gone:
        conn.execute(feed_jobs.delete().where(feed_jobs.c.feed == state.name))
        conn.execute(feeds.delete().where(feeds.c.name == state.name))
    if gone:
        orphans = sa.select(jobs.c.id).where(~jobs.c.id.in_(sa.select(feed_jobs.c.job_id)))
        conn.execute(values.delete().where(values.c.job_id.in_(orphans)))
        conn.execute(jobs.delete().where(~jobs.c.id.in_(sa.select(feed_jobs.c.job_id))))
    return gone
