"""Apply feed records to the index, in the transaction that also moves the feed's place.

One call applies one pushed batch or one pulled page: the jobs, their values (a repeated
``(job, name, seq)`` is dropped), retractions, ``removed`` notices, and the feed's new position
(the batch number or the pull token) are committed together, so a crash at any point leaves the
index either before the batch or after it, never in between.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from jp_primary.attributes.names import expand
from jp_primary.index import feedstate
from jp_primary.index.catalog import Catalog
from jp_primary.index.tables import feed_jobs, jobs, values
from jp_primary.index.wire import FeedRecord

CHUNK = 500  # bound on bound parameters per IN (...) list


@dataclass(frozen=True)
class Applied:
    records: int
    values: int
    duplicate: bool = False


class StaleFeed(Exception):
    """A batch of a subscription that is not (or not yet) this feed's current one."""


def job_key(jobid: str) -> str:
    """The primary's path handle of a jobid: its last path segment (API.md ``key``)."""
    return jobid.rstrip("/").rpartition("/")[2][:128]


def _insert(conn: Connection, table: sa.Table) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _job_ids(conn: Connection, source: str, records: Sequence[FeedRecord]) -> dict[str, int]:
    owners = {r.jobid: r.owner or "" for r in records}
    wanted = list(owners)
    ids: dict[str, int] = {}
    stored: dict[str, str] = {}

    def load() -> None:
        for part in _chunks([j for j in wanted if j not in ids]):
            query = sa.select(jobs.c.id, jobs.c.jobid, jobs.c.owner).where(
                jobs.c.source == source, jobs.c.jobid.in_(part)
            )
            for row in conn.execute(query):
                ids[row.jobid] = row.id
                stored[row.jobid] = row.owner

    load()
    missing = [j for j in wanted if j not in ids]
    if missing:
        rows = [
            {"source": source, "jobid": j, "key": job_key(j), "owner": owners[j]} for j in missing
        ]
        conn.execute(_insert(conn, jobs), rows)
        load()
    for jobid, owner in owners.items():
        if (
            owner and stored.get(jobid, owner) != owner
        ):  # a primary's trusted take-over changes owners
            conn.execute(jobs.update().where(jobs.c.id == ids[jobid]).values(owner=owner))
    return ids


def _remove(conn: Connection, feed: str, job_id: int) -> None:
    conn.execute(feed_jobs.delete().where(feed_jobs.c.feed == feed, feed_jobs.c.job_id == job_id))
    others = conn.execute(sa.select(feed_jobs.c.feed).where(feed_jobs.c.job_id == job_id)).first()
    if others is None:
        conn.execute(values.delete().where(values.c.job_id == job_id))
        conn.execute(jobs.delete().where(jobs.c.id == job_id))


class Applier:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def apply(
        self, conn: Connection, feed: str, source: str, records: Sequence[FeedRecord]
    ) -> Applied:
        ids = _job_ids(conn, source, records)
        stored = 0
        pending: list[FeedRecord] = []
        for record in records:
            if record.removed:
                stored += self._store(conn, feed, ids, pending)
                pending = []
                _remove(conn, feed, ids[record.jobid])
            else:
                pending.append(record)
        stored += self._store(conn, feed, ids, pending)
        return Applied(records=len(records), values=stored)

    def _store(
        self, conn: Connection, feed: str, ids: dict[str, int], records: Sequence[FeedRecord]
    ) -> int:
        if not records:
            return 0
        members = [{"feed": feed, "job_id": j} for j in {ids[r.jobid] for r in records}]
        conn.execute(_insert(conn, feed_jobs), members)
        rows: list[dict[str, Any]] = []
        single: set[tuple[int, str]] = set()
        retracted: list[tuple[int, list[int]]] = []
        for record in records:
            job_id = ids[record.jobid]
            if record.retracted:
                retracted.append((job_id, record.retracted))
            for value in record.values:
                name = expand(value.name)
                section = self.catalog.lookup(name)
                if section is None:
                    continue  # not configured: the index does not keep it (as the original)
                if not section.multivalued:
                    single.add((job_id, name))
                rows.append(
                    {
                        "job_id": job_id,
                        "name": name,
                        "value": value.value,
                        "key": self.catalog.key(name, value.value),
                        "origin": value.origin,
                        "origin_detail": value.origin_detail,
                        "timestamp": value.timestamp,
                        "seq": value.seq,
                    }
                )
        if rows:
            conn.execute(_insert(conn, values), rows)
        for job_id, seqs in retracted:  # re-extraction replaced these values on the primary
            for part in _chunks(seqs):
                conn.execute(
                    values.delete().where(values.c.job_id == job_id, values.c.seq.in_(part))
                )
        for job_id, name in single:  # single-valued: only the newest value stays
            newest = (
                sa.select(sa.func.max(values.c.seq))
                .where(values.c.job_id == job_id, values.c.name == name)
                .scalar_subquery()
            )
            conn.execute(
                values.delete().where(
                    values.c.job_id == job_id, values.c.name == name, values.c.seq < newest
                )
            )
        return len(rows)


def apply_batch(
    conn: Connection,
    applier: Applier,
    feed: str,
    records: Sequence[FeedRecord],
    now: datetime,
    *,
    history_done: bool,
    remote_id: str | None = None,
    batch: int | None = None,
    pull_token: str | None = None,
) -> Applied:
    """Apply records and move the feed's place, atomically (the caller's transaction)."""
    state = feedstate.get(conn, feed, lock=True)
    if state is None or state.remote_id is None or state.remote_id != remote_id:
        raise StaleFeed(feed)
    if batch is not None and state.last_batch is not None and batch <= state.last_batch:
        return Applied(records=0, values=0, duplicate=True)  # redelivered: already applied
    applied = applier.apply(conn, feed, state.source, records)
    seqs = [v.seq for r in records for v in r.values] + [state.last_seq or 0]
    changes: dict[str, Any] = {
        "last_delivery_at": now,
        "last_seq": max(seqs) or None,
        "records": state.records + applied.records,
        "history_done": state.history_done or history_done,
        "phase": "live" if (state.history_done or history_done) else "history",
    }
    if batch is not None:
        changes["last_batch"] = batch
    if pull_token is not None:
        changes["pull_token"] = pull_token
    feedstate.update(conn, feed, **changes)
    return applied
