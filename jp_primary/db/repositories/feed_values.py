"""Reading the change sequence for feeds: jobs in key order, values by seq, tombstones.

Every reader is bounded (``limit``) or works on a given list of jobs, so a feed of a million
jobs is streamed in chunks, never loaded at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import ColumnElement, DateTime, and_, delete, func, or_, text, type_coerce
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, col, select

from jp_primary.db.models import (
    AttributeValueRow,
    FeedRow,
    IdentityRow,
    JobRow,
    RetractedValueRow,
)

_VALUES = SQLModel.metadata.tables["attribute_values"]


class FeedValue(NamedTuple):
    """A tuple, not a dataclass: a history batch builds thousands of them (cheap to make)."""

    job_id: int
    name: str
    value: str
    origin: str
    origin_detail: str | None
    timestamp: datetime
    seq: int


@dataclass(frozen=True)
class JobHead:
    id: int
    jobid: str
    owner: str


def _heads() -> Any:
    return select(JobRow.id, JobRow.jobid, IdentityRow.subject).join(
        IdentityRow, col(IdentityRow.id) == col(JobRow.owner_id)
    )


def jobs_after(session: Session, after: int, limit: int) -> list[JobHead]:
    """The next ``limit`` jobs above id ``after`` (history walks jobs in id order)."""
    stmt = _heads().where(col(JobRow.id) > after).order_by(col(JobRow.id)).limit(limit)
    return [JobHead(int(i), jobid, owner) for i, jobid, owner in session.exec(stmt).all()]


def job_heads(session: Session, job_ids: Sequence[int]) -> dict[int, JobHead]:
    if not job_ids:
        return {}
    stmt = _heads().where(col(JobRow.id).in_(job_ids))
    return {
        int(i): JobHead(int(i), jobid, owner)
        for i, jobid, owner in session.exec(stmt).all()
        if i is not None
    }


def values_of_jobs(
    session: Session,
    job_ids: Sequence[int],
    names_lower: Sequence[str],
    max_seq: int,
    min_seq: int = 0,
    prefixes_lower: Sequence[str] = (),
    id_range: tuple[int, int] | None = None,
) -> list[FeedValue]:
    """Values of ``job_ids`` whose name is one of ``names_lower`` or starts with one of
    ``prefixes_lower`` (compared case-insensitively, as everywhere) with
    ``min_seq < seq <= max_seq``, by job and then seq. ``id_range`` ``(after, last)`` says
    that ``job_ids`` are all the jobs with ``after < id <= last`` (one index range, not a
    probe per job)."""
    if not job_ids or not (names_lower or prefixes_lower):
        return []
    v = _VALUES.c
    lowered = func.lower(v.name)
    # A prefix is a LIKE pattern with its own wildcards escaped (names may hold "_" and "%");
    # the job_id condition keeps the scan to the jobs' rows either way.
    by_name = or_(
        lowered.in_(names_lower),
        *(lowered.like(_like_prefix(p), escape=_ESCAPE) for p in prefixes_lower),
    )
    # The seq bounds are applied here, not in SQL: with them PostgreSQL may pick the seq index
    # (a range over the whole table) over the job's rows, e.g. before statistics exist.
    by_jobs: ColumnElement[bool]
    if id_range is None:
        by_jobs = v.job_id.in_(job_ids)
    else:
        by_jobs = and_(v.job_id > id_range[0], v.job_id <= id_range[1])
    timestamp: Any = v.timestamp
    if session.get_bind().dialect.name == "postgresql":
        # The driver returns aware datetimes already: skip the UTC type's per-row conversion
        # (SQLite stores text, which that conversion parses).
        timestamp = type_coerce(v.timestamp, DateTime(timezone=True)).label("timestamp")
    stmt = (
        sa_select(v.job_id, v.name, v.value, v.origin, v.origin_detail, timestamp, v.seq)
        .where(by_jobs, by_name)
        .order_by(v.job_id, v.seq)
    )
    # All rows at once (fetchall), not row by row: a history batch reads thousands.
    rows = session.execute(stmt).all()
    return [FeedValue._make(row) for row in rows if min_seq < row[6] <= max_seq]


class HistoryJob(NamedTuple):
    """A job of a history chunk with its record already encoded (see ``history_chunk``)."""

    job_id: int
    present: bool  # has a value up to the snapshot: registered before it
    record: str  # {"jobid", "owner", "values"} as compact JSON
    tested: list[tuple[str, str, str]]  # (name, value, origin) the conditions look at


# PostgreSQL builds each job's record in the query (one statement per chunk, its text fixed so
# the driver prepares it): Python only joins the records. Field order and formats are those of
# ``feed.matcher.value_body`` (tests compare the two). The snapshot is tested in the aggregates,
# not the WHERE, so the plan is always the range over the jobs' rows, never the seq index.
_HISTORY_CHUNK_SQL = text(
    """
WITH j AS (
    SELECT jobs.id, jobs.jobid, identities.subject AS owner
    FROM jobs JOIN identities ON identities.id = jobs.owner_id
    WHERE jobs.id > :after ORDER BY jobs.id LIMIT :limit
), v AS (
    SELECT job_id,
        count(*) FILTER (WHERE seq <= :snapshot) AS present,
        string_agg(
            '{"name":' || to_json(name) || ',"value":' || to_json(value)
            || ',"origin":' || to_json(origin)
            || ',"origin_detail":' || coalesce(to_json(origin_detail)::text, 'null')
            || ',"timestamp":"'
            || to_char(timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
            || '","seq":' || seq || '}',
            ',' ORDER BY seq
        ) FILTER (
            WHERE seq <= :snapshot AND (lower(name) = ANY(CAST(:requested AS text[]))
                OR lower(name) LIKE ANY(CAST(:patterns AS text[])))
        ) AS vals,
        json_agg(json_build_array(name, value, origin) ORDER BY seq) FILTER (
            WHERE seq <= :snapshot AND lower(name) = ANY(CAST(:tested AS text[]))
        )::text AS tested
    FROM attribute_values
    WHERE job_id > :after AND job_id <= (SELECT max(id) FROM j)
        AND (lower(name) = ANY(CAST(:needed AS text[]))
            OR lower(name) LIKE ANY(CAST(:patterns AS text[])))
    GROUP BY job_id
)
SELECT j.id, coalesce(v.present, 0) > 0,
    '{"jobid":' || to_json(j.jobid) || ',"owner":' || to_json(j.owner)
    || ',"values":[' || coalesce(v.vals, '') || ']}',
    v.tested
FROM j LEFT JOIN v ON v.job_id = j.id
ORDER BY j.id
"""
)


def history_chunk(
    session: Session,
    after: int,
    limit: int,
    snapshot: int,
    requested_lower: Sequence[str],
    tested_lower: Sequence[str],
    needed_lower: Sequence[str],
    prefixes_lower: Sequence[str] = (),
) -> list[HistoryJob]:
    """PostgreSQL only: the next ``limit`` jobs above id ``after`` with their records of the
    requested values (exact names ``requested_lower`` or names starting with one of
    ``prefixes_lower``) stored up to ``snapshot``, and the values of the names
    ``tested_lower`` the conditions look at. ``present`` says whether the job has any value of
    ``needed_lower`` (a superset of both) or the prefixes up to ``snapshot``."""
    rows = session.execute(
        _HISTORY_CHUNK_SQL,
        {
            "after": after,
            "limit": limit,
            "snapshot": snapshot,
            "requested": list(requested_lower),
            "tested": list(tested_lower),
            "needed": list(needed_lower),
            "patterns": [_like_prefix(p) for p in prefixes_lower],
        },
    ).all()
    # The tested values come as text, decoded by orjson (the driver's json.loads is slower).
    return [
        HistoryJob(
            int(job_id), bool(present), record, [tuple(t) for t in orjson.loads(tested or "[]")]
        )
        for job_id, present, record, tested in rows
    ]


_ESCAPE = "\\"


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern matching the names that start with ``prefix`` literally."""
    escaped = prefix.replace(_ESCAPE, _ESCAPE * 2).replace("%", _ESCAPE + "%")
    return escaped.replace("_", _ESCAPE + "_") + "%"


def changes(session: Session, after: int, upto: int, limit: int) -> list[tuple[int, int, str]]:
    """``(seq, job_id, name)`` of the values stored with ``after < seq <= upto``, in seq order."""
    v = AttributeValueRow
    stmt = (
        select(v.seq, v.job_id, v.name)
        .where(col(v.seq) > after, col(v.seq) <= upto)
        .order_by(col(v.seq))
        .limit(limit)
    )
    return [(int(s), int(j), n) for s, j, n in session.exec(stmt)]


def tombstones(session: Session, after: int, upto: int) -> list[tuple[int, int, int]]:
    """``(announced_seq, job_id, retracted seq)`` of values removed with ``after < announced_seq
    <= upto``, in announced order."""
    r = RetractedValueRow
    stmt = (
        select(r.announced_seq, r.job_id, r.seq)
        .where(col(r.announced_seq) > after, col(r.announced_seq) <= upto)
        .order_by(col(r.announced_seq), col(r.seq))
    )
    return [(int(a), int(j), int(s)) for a, j, s in session.exec(stmt)]


def oldest_live_cursor(session: Session, now: datetime) -> int | None:
    """The lowest build cursor of the continuous feeds that have not expired: the first seq such
    a feed may still read changes and tombstones after (None: no such feed)."""
    stmt = select(func.min(FeedRow.cursor_seq)).where(
        col(FeedRow.continuous).is_(True), col(FeedRow.expires_at) > now
    )
    found = session.exec(stmt).one()
    return None if found is None else int(found)


def purge_tombstones(session: Session, upto_seq: int, recorded_before: datetime) -> int:
    """Delete the tombstones announced at or before ``upto_seq`` and recorded before
    ``recorded_before``; how many went."""
    r = RetractedValueRow
    stmt = delete(r).where(col(r.announced_seq) <= upto_seq, col(r.retracted_at) < recorded_before)
    return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def seq_recorded_at(session: Session, seq: int) -> datetime | None:
    """When the value with ``seq`` was stored (for a feed's lag in seconds), if it still is."""
    stmt = select(AttributeValueRow.recorded_at).where(col(AttributeValueRow.seq) == seq)
    return session.exec(stmt).first()


def first_after(session: Session, seq: int) -> int | None:
    """The smallest stored seq above ``seq``: when the oldest change a feed has not passed
    was stored."""
    stmt = select(func.min(AttributeValueRow.seq)).where(col(AttributeValueRow.seq) > seq)
    found = session.exec(stmt).one()
    return None if found is None else int(found)
