"""Cutting a feed's next batch from the change sequence (DESIGN.md "Feed semantics").

History walks the jobs in id order, reading only values with ``seq <= S`` (the snapshot), and
ends with a batch marked ``history_done`` (also when nothing matched). Continuous reads the
changes with ``seq > S`` in seq order: a window is cut at a seq boundary so that the feed's
cursor is always "every change up to here is in a batch". The cut batch is stored together with
the feed's new state in the caller's transaction, so a redelivery repeats it exactly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlmodel import Session

from jp_primary.attributes.names import SYSTEM_JOBID
from jp_primary.db.repositories import feed_values, feeds, values
from jp_primary.db.repositories.feed_values import FeedValue, HistoryJob
from jp_primary.db.repositories.feeds import Feed, StoredBatch
from jp_primary.feed.matcher import (
    JobRecord,
    Selection,
    encode,
    job_matches,
    requested_values,
    tested_match,
)


@dataclass(frozen=True)
class CutLimits:
    max_jobs: int = 200
    max_bytes: int = 1024 * 1024
    scan_rows: int = 20_000  # changes or jobs looked at per cut (bounds one transaction)


@dataclass(frozen=True)
class Cut:
    """A cut's outcome: the new batch (or None when nothing was to be sent) and whether more
    remains to be read already (call again at once)."""

    batch: StoredBatch | None
    more: bool


def cut_next(
    session: Session, feed: Feed, selection: Selection, limits: CutLimits, now: datetime
) -> Cut:
    """Cut batch ``feed.built_batch + 1`` if there is anything to send; store it and the feed's
    new build state. The caller holds the feed's row lock."""
    if feed.phase == "history":
        return _history(session, feed, selection, limits, now)
    if feed.phase == "continuous":
        return _continuous(session, feed, selection, limits, now)
    return Cut(None, False)


def _store(
    session: Session, feed: Feed, body: str, jobs: int, now: datetime, **state: Any
) -> StoredBatch:
    number = feed.built_batch + 1
    history_done = bool(state.pop("history_done", False))
    last_seq = int(state.pop("last_seq"))
    batch = StoredBatch(number, history_done, body, jobs, last_seq)
    feeds.add_batch(session, feed.id, batch, now)
    if history_done:
        state["history_done_batch"] = number
    feeds.set_fields(session, feed.id, built_batch=number, **state)
    return batch


# -- history ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryPlan:
    """A history batch read but not stored yet: its records, the jobs it matched, where the
    walk stands after it and whether the walk is over. ``start`` is where the feed stood."""

    start: int
    records: list[str]
    matched: list[int]
    after: int
    exhausted: bool


@dataclass(frozen=True)
class ReadAhead:
    """A history batch read ahead and stored (None: nothing matched in the jobs read), where
    the feed's walk stands after it and whether the walk is over."""

    batch: StoredBatch | None
    after: int
    exhausted: bool


def _history(
    session: Session, feed: Feed, selection: Selection, limits: CutLimits, now: datetime
) -> Cut:
    return store_history(session, feed, plan_history(session, feed, selection, limits), now)


# Reads the encoded records of the next ``want`` jobs after a job id (see ``_history_chunk``).
ChunkReader = Callable[[int, int], list[HistoryJob]]


def plan_history(
    session: Session,
    feed: Feed,
    selection: Selection,
    limits: CutLimits,
    start: int | None = None,
    read: ChunkReader | None = None,
) -> HistoryPlan:
    """Read the feed's next history batch, or the one after job id ``start``; no writes and no
    locks, so it may run while earlier batches are stored and acknowledged (``store_history``
    stores it, if the feed then stands at ``start``). ``read`` reads the jobs' records
    (default: ``_history_chunk`` in this session)."""
    start = feed.history_after_job if start is None else start
    if read is None:
        snapshot = feed.snapshot_seq

        def read(after: int, want: int) -> list[HistoryJob]:
            return _history_chunk(session, selection, after, want, snapshot)

    records: list[str] = []
    matched: list[int] = []
    size, after, scanned, exhausted, full = 2, start, 0, False, False
    while len(records) < limits.max_jobs and scanned < limits.scan_rows and not (exhausted or full):
        want = limits.max_jobs - len(records)
        chunk = read(after, want)
        exhausted = len(chunk) < want
        scanned += len(chunk)
        for job in chunk:
            # No value up to S: the job was registered after the snapshot (continuous has it).
            if job.present and tested_match(selection, job.tested):
                cost = len(job.record.encode()) + 1
                if records and size + cost > limits.max_bytes:
                    exhausted, full = False, True
                    break
                records.append(job.record)
                matched.append(job.job_id)
                size += cost
            after = job.job_id
    return HistoryPlan(start, records, matched, after, exhausted)


def store_history(session: Session, feed: Feed, plan: HistoryPlan, now: datetime) -> Cut:
    """Store a planned history batch as the feed's next; the caller holds the feed's row lock
    and has checked that the feed still stands where the plan started."""
    batch, fields, more = _history_outcome(feed, plan)
    _store_planned(session, feed, plan, batch, now)
    feeds.set_fields(session, feed.id, **fields)
    return Cut(batch, more)


def store_history_if_current(
    session: Session, feed: Feed, worker: str, plan: HistoryPlan, now: datetime
) -> Cut | None:
    """As ``store_history``, without the row lock: ``feed`` is the feed as ``worker`` expects
    it (its ``built_batch``), and one UPDATE checks that it still stands there, where the plan
    started, and moves it on; the row is locked only from there to the commit. None when it
    does not stand there (nothing is stored)."""
    batch, fields, more = _history_outcome(feed, plan)
    expected = {
        "lease_owner": worker,
        "phase": "history",
        "built_batch": feed.built_batch,
        "history_after_job": plan.start,
    }
    if not feeds.set_fields_if(session, feed.id, expected, **fields):
        return None
    _store_planned(session, feed, plan, batch, now)
    return Cut(batch, more)


def _history_outcome(
    feed: Feed, plan: HistoryPlan
) -> tuple[StoredBatch | None, dict[str, Any], bool]:
    """The batch a plan makes (None: nothing matched in the jobs it read), the feed's fields
    after it, and whether more remains to be cut at once."""
    fields: dict[str, Any] = {"history_after_job": plan.after}
    if not plan.records and not plan.exhausted:
        return None, fields, True
    number = feed.built_batch + 1
    encoded = "[" + ",".join(plan.records) + "]"
    fields["built_batch"] = number
    if not plan.exhausted:
        return StoredBatch(number, False, encoded, len(plan.records), 0), fields, True
    phase = "continuous" if feed.continuous else "done"
    fields.update(phase=phase, history_done_batch=number)
    batch = StoredBatch(number, True, encoded, len(plan.records), feed.snapshot_seq)
    return batch, fields, phase == "continuous"


def _store_planned(
    session: Session, feed: Feed, plan: HistoryPlan, batch: StoredBatch | None, now: datetime
) -> None:
    if feed.continuous:
        feeds.add_sent(session, feed.id, plan.matched)
    if batch is not None:
        feeds.add_batch(session, feed.id, batch, now)


def _history_chunk(
    session: Session, selection: Selection, after: int, want: int, snapshot: int
) -> list[HistoryJob]:
    """The next ``want`` jobs after ``after`` with their encoded records. PostgreSQL encodes
    them in its query (a history of a million jobs is mostly this); SQLite's are encoded here."""
    if session.get_bind().dialect.name == "postgresql":
        return chunk_encoded_in_sql(session, selection, after, want, snapshot)
    return chunk_encoded_here(session, selection, after, want, snapshot)


def _needed(selection: Selection) -> list[str]:
    # The job's own id is read too: every job registered before S has it, so "no value up to
    # S" means registered after, whatever the feed asks for.
    return sorted(selection.needed_lower | {SYSTEM_JOBID.lower()})


def chunk_encoded_in_sql(
    session: Session,
    selection: Selection,
    after: int,
    want: int,
    snapshot: int,
) -> list[HistoryJob]:
    return feed_values.history_chunk(
        session,
        after,
        want,
        snapshot,
        requested_lower=sorted(selection.requested_lower),
        tested_lower=sorted(selection.condition_lower),
        needed_lower=_needed(selection),
        prefixes_lower=selection.prefixes_lower,
    )


def chunk_encoded_here(
    session: Session, selection: Selection, after: int, want: int, snapshot: int
) -> list[HistoryJob]:
    """As ``chunk_encoded_in_sql``, the same JSON but for the spelling of escapes."""
    jobs = feed_values.jobs_after(session, after, want)
    ids = [job.id for job in jobs]
    # Every job with after < id <= the last one read is in ``jobs``: one range to read.
    by_job = _by_job(
        feed_values.values_of_jobs(
            session,
            ids,
            _needed(selection),
            snapshot,
            prefixes_lower=selection.prefixes_lower,
            id_range=(after, ids[-1]) if ids else None,
        )
    )
    tested = selection.condition_lower
    chunk: list[HistoryJob] = []
    for job in jobs:
        vals = by_job.get(job.id, [])
        record = JobRecord(job.jobid, job.owner, requested_values(selection, vals))
        conditions = [(v.name, v.value, v.origin) for v in vals if v.name.lower() in tested]
        chunk.append(HistoryJob(job.id, bool(vals), encode(record.body()), conditions))
    return chunk


def _by_job(rows: list[FeedValue]) -> dict[int, list[FeedValue]]:
    grouped: dict[int, list[FeedValue]] = defaultdict(list)
    for row in rows:
        grouped[row.job_id].append(row)
    return grouped


# -- continuous ---------------------------------------------------------------------------------


def _window(
    session: Session, feed: Feed, selection: Selection, max_jobs: int, scan_rows: int, head: int
) -> tuple[list[int], int, dict[int, list[int]]]:
    """The jobs touched by relevant changes in ``(cursor, upto]`` (first-touched first), the
    window's end ``upto`` and the tombstones per job in it. The window ends at the scan limit or
    just before the change that would bring a job past ``max_jobs``."""
    cursor = feed.cursor_seq
    rows = feed_values.changes(session, cursor, head, scan_rows)
    upto = rows[-1][0] if len(rows) == scan_rows else head
    events: list[tuple[int, int, str | None]] = [(s, j, n) for s, j, n in rows if s <= upto]
    tombs = feed_values.tombstones(session, cursor, upto)
    events.extend((a, j, None) for a, j, _ in tombs)
    events.sort(key=lambda e: e[0])
    needs = selection.needs
    order: list[int] = []
    seen: set[int] = set()
    for seq, job_id, name in events:
        if name is not None and not needs(name.lower()):
            continue
        if job_id not in seen:
            if len(order) == max_jobs:
                upto = seq - 1
                break
            seen.add(job_id)
            order.append(job_id)
    retracted: dict[int, list[int]] = defaultdict(list)
    for announced, job_id, seq in tombs:
        if announced <= upto:
            retracted[job_id].append(seq)
    return order, upto, retracted


def _continuous(
    session: Session, feed: Feed, selection: Selection, limits: CutLimits, now: datetime
) -> Cut:
    head = values.last_seq(session)
    if head <= feed.cursor_seq:
        return Cut(None, False)
    max_jobs = limits.max_jobs
    while True:
        order, upto, retracted = _window(session, feed, selection, max_jobs, limits.scan_rows, head)
        outcome = _continuous_records(session, feed, selection, order, upto, retracted)
        records, sent, unsent = outcome
        encoded = encode(records)
        if max_jobs == 1 or len(encoded.encode()) <= limits.max_bytes:
            break
        max_jobs = max(1, max_jobs // 2)
    feeds.add_sent(session, feed.id, sent)
    feeds.remove_sent(session, feed.id, unsent)
    if not records:
        feeds.set_fields(session, feed.id, cursor_seq=upto)
        return Cut(None, upto < head)
    batch = _store(session, feed, encoded, len(records), now, last_seq=upto, cursor_seq=upto)
    return Cut(batch, upto < head)


def _continuous_records(
    session: Session,
    feed: Feed,
    selection: Selection,
    order: list[int],
    upto: int,
    retracted: dict[int, list[int]],
) -> tuple[list[dict[str, Any]], list[int], list[int]]:
    """The records of the window's jobs, the jobs sent in full now, the jobs that stopped
    matching."""
    if not order:
        return [], [], []
    needed = sorted(selection.needed_lower)
    by_job = _by_job(
        feed_values.values_of_jobs(
            session, order, needed, upto, prefixes_lower=selection.prefixes_lower
        )
    )
    heads = feed_values.job_heads(session, order)
    already = feeds.sent_among(session, feed.id, order)
    records: list[dict[str, Any]] = []
    sent: list[int] = []
    unsent: list[int] = []
    for job_id in order:
        vals = by_job.get(job_id, [])
        head = heads.get(job_id)
        if head is None:
            continue
        record = JobRecord(head.jobid, head.owner, retracted=sorted(retracted.get(job_id, [])))
        if job_matches(selection, vals):
            if job_id in already:
                record.values = requested_values(selection, vals, feed.cursor_seq)
                if not record.values and not record.retracted:
                    continue
            else:
                record.values = requested_values(selection, vals)
                sent.append(job_id)
        elif job_id in already:
            unsent.append(job_id)
            if not feed.notify_removed:
                continue
            record = replace(record, removed=True)
        else:
            continue
        records.append(record.body())
    return records, sent, unsent
