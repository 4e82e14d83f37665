"""The feed engine: subscriptions, their state, pull reads and the push worker's steps.

Every operation is one transaction through ``Database.run``; the state that matters (cursors,
unacknowledged batches, leases) is only in the database, so any process can continue a feed
another one started, and a restart loses nothing.
"""

from __future__ import annotations

import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlmodel import Session

from jp_primary.attributes.registry import TypeRegistry
from jp_primary.db.repositories import feed_values, feeds, values
from jp_primary.db.repositories.feed_values import HistoryJob
from jp_primary.db.repositories.feeds import Feed, StoredBatch
from jp_primary.db.session import Database
from jp_primary.errors import BadRequest, Conflict, Gone, NotFound
from jp_primary.feed import metrics, tokens
from jp_primary.feed.cutter import (
    ChunkReader,
    CutLimits,
    HistoryPlan,
    ReadAhead,
    chunk_encoded_in_sql,
    cut_next,
    plan_history,
    store_history_if_current,
)
from jp_primary.feed.jobstream import JobStream
from jp_primary.feed.spec import Subscription, selection_of
from jp_primary.plugins.registry import PluginRegistry

# Cuts that found nothing to send but more to read, tried in one transaction before giving up
# the row lock (each cut is itself bounded by CutLimits.scan_rows).
CUTS_PER_TRANSACTION = 8
# Tombstones younger than this are kept whatever the feeds' cursors say (see ``purge``).
TOMBSTONE_MIN_AGE = timedelta(minutes=10)


@dataclass(frozen=True)
class Purged:
    feeds: int
    tombstones: int


@dataclass(frozen=True)
class FeedState:
    """A feed as its subscriber sees it (``GET /v1/feeds/{id}``)."""

    feed: Feed
    phase: str  # history | continuous | done | expired
    head_seq: int
    lag_seq: int
    lag_seconds: float


@dataclass(frozen=True)
class PullAnswer:
    records: list[dict[str, Any]]
    next: str
    history_done: bool


@dataclass(frozen=True)
class PushBatch:
    feed: Feed
    batch: StoredBatch

    def body(self) -> bytes:
        """The push body, byte for byte the same for every delivery of this batch."""
        done = _history_done(self.feed, self.batch.number)
        return (
            f'{{"feed_id":{json.dumps(self.feed.id)},"batch":{self.batch.number},'
            f'"history_done":{"true" if done else "false"},"records":{self.batch.body}}}'
        ).encode()


def _history_done(feed: Feed, number: int) -> bool:
    if not feed.history:
        return True
    return feed.history_done_batch is not None and number >= feed.history_done_batch


def phase_of(feed: Feed, now: datetime) -> str:
    if feed.expires_at <= now:
        return "expired"
    if feed.history and (
        feed.history_done_batch is None or feed.acked_batch < feed.history_done_batch
    ):
        return "history"
    return "continuous" if feed.continuous else "done"


class FeedEngine:
    def __init__(self, db: Database, registry: TypeRegistry, limits: CutLimits) -> None:
        self.db = db
        self.registry = registry
        self.limits = limits
        # The chunks the job streams read ahead (``job_stream``), a unit of work each (the
        # pool's overflow has room for them).
        self._ahead = ThreadPoolExecutor(max_workers=4, thread_name_prefix="feed-read-ahead")

    # -- subscriptions --------------------------------------------------------------------------

    async def subscribe(self, owner: str, sub: Subscription, now: datetime) -> Feed:
        selection_of(sub.attributes, sub.conditions, self.registry)  # 422 before storing

        def create(session: Session) -> Feed:
            snapshot = values.last_seq(session)
            feed = Feed(
                id=secrets.token_hex(16),
                owner=owner,
                destination=sub.destination,
                attributes=list(sub.attributes),
                conditions=list(sub.conditions),
                history=sub.history,
                continuous=sub.continuous,
                notify_removed=sub.notify_removed,
                snapshot_seq=snapshot,
                phase="history" if sub.history else "continuous",
                history_after_job=0,
                cursor_seq=snapshot,
                built_batch=0,
                acked_batch=0,
                history_done_batch=None,
                created_at=now,
                ttl_seconds=sub.ttl_seconds,
                expires_at=now + timedelta(seconds=sub.ttl_seconds),
                acked_seq=0 if sub.history else snapshot,
            )
            feeds.insert_feed(session, feed)
            return feed

        return await self.db.run(create)

    async def find(self, feed_id: str) -> Feed | None:
        return await self.db.run(lambda s: feeds.get(s, feed_id))

    async def feed(self, feed_id: str) -> Feed:
        found = await self.find(feed_id)
        if found is None:
            raise NotFound(f"no feed {feed_id!r} (expired feeds are purged after a grace period)")
        return found

    async def state(self, feed: Feed, now: datetime) -> FeedState:
        def read(session: Session) -> FeedState:
            head = values.last_seq(session)
            # With nothing unacknowledged, changes up to the build cursor needed no batch.
            caught_up = feed.built_batch == feed.acked_batch and phase_of(feed, now) != "history"
            position = max(feed.acked_seq, feed.cursor_seq) if caught_up else feed.acked_seq
            lag = max(0, head - position)
            seconds = 0.0
            if lag:
                oldest = feed_values.first_after(session, position)
                at = feed_values.seq_recorded_at(session, oldest) if oldest else None
                seconds = max(0.0, (now - at).total_seconds()) if at else 0.0
            metrics.HEAD.set(head)
            return FeedState(feed, phase_of(feed, now), head, lag, seconds)

        return await self.db.run(read)

    async def feeds_of(self, owner: str | None) -> list[Feed]:
        return await self.db.run(lambda s: feeds.list_feeds(s, owner))

    async def refresh(self, feed: Feed, now: datetime) -> datetime:
        if feed.expires_at <= now:
            raise Gone("the feed has expired: subscribe again")
        until = now + timedelta(seconds=feed.ttl_seconds)
        await self.db.run(lambda s: feeds.set_fields(s, feed.id, expires_at=until))
        return until

    async def cancel(self, feed_id: str) -> None:
        await self.db.run(lambda s: feeds.remove(s, [feed_id]))

    async def purge(self, now: datetime, grace: timedelta) -> Purged:
        """Remove feeds whose expiry is older than the grace period, and the tombstones no live
        feed can need any more (docs/feeds.md "Purging")."""

        def run(session: Session) -> Purged:
            ended = feeds.ended_before(session, now - grace)
            feeds.remove(session, ended)
            # A continuous feed reads tombstones announced after its build cursor; expired
            # feeds never read again (pulls and refreshes answer 410, workers drop them).
            floor = feed_values.oldest_live_cursor(session, now)
            horizon = values.last_seq(session) if floor is None else floor
            # The age guards a feed being subscribed right now, its row not yet visible here:
            # its snapshot is a seq read before that, and tombstones announced after it are
            # younger than TOMBSTONE_MIN_AGE (a subscription is one short transaction).
            gone = feed_values.purge_tombstones(session, horizon, now - TOMBSTONE_MIN_AGE)
            return Purged(len(ended), gone)

        return await self.db.run(run)

    # -- cutting --------------------------------------------------------------------------------

    def _cut(
        self, session: Session, feed: Feed, now: datetime, max_jobs: int
    ) -> StoredBatch | None:
        limits = self.limits
        if max_jobs < limits.max_jobs:
            limits = CutLimits(max_jobs, limits.max_bytes, limits.scan_rows)
        selection = selection_of(feed.attributes, feed.conditions, self.registry)
        for _ in range(CUTS_PER_TRANSACTION):
            cut = cut_next(session, feed, selection, limits, now)
            if cut.batch is not None or not cut.more:
                return cut.batch
            fresh = feeds.get(session, feed.id)
            assert fresh is not None
            feed = fresh
        return None

    # -- pull -----------------------------------------------------------------------------------

    def pull_sync(
        self,
        session: Session,
        feed_id: str,
        since: str | None,
        limit: int,
        now: datetime,
        subscriber: str,
    ) -> PullAnswer:
        """The batch after the one ``since`` names (cut now if it is the newest); a token names
        the batches up to it acknowledged. Idempotent: the same token gives the same batch."""
        feed = feeds.get(session, feed_id, lock=True)
        if feed is None:
            if since is not None and tokens.well_formed(feed_id, since):
                raise Gone("this feed no longer exists (expired and purged, or cancelled)")
            raise NotFound(f"no feed {feed_id!r}")
        if feed.owner != subscriber:
            raise NotFound(f"no feed {feed_id!r} of yours")
        if feed.destination is not None:
            raise Conflict("this is a push feed: its batches go to its destination")
        if feed.expires_at <= now:
            raise Gone("the feed has expired: subscribe again")
        seen = tokens.parse(feed_id, since) if since is not None else 0
        if seen > feed.built_batch:
            raise BadRequest("this token is ahead of the feed: pass a `next` it returned")
        if seen > feed.acked_batch:
            acked = feeds.batch(session, feed_id, seen)
            acked_seq = max(feed.acked_seq, acked.last_seq if acked else 0)
            feeds.set_fields(
                session, feed_id, acked_batch=seen, acked_seq=acked_seq, last_delivery_at=now
            )
            feeds.drop_batches_below(session, feed_id, seen)
            feed = feeds.get(session, feed_id)
            assert feed is not None
        wanted = seen + 1
        if wanted <= feed.built_batch:
            batch = feeds.batch(session, feed_id, wanted)
            if batch is None:
                raise Gone("the server no longer keeps the batch after this token: resubscribe")
        else:
            batch = self._cut(session, feed, now, limit)
            if batch is not None:
                feed = feeds.get(session, feed_id)
                assert feed is not None
        if batch is None:
            return PullAnswer([], tokens.issue(feed_id, seen), _history_done(feed, seen))
        return PullAnswer(
            json.loads(batch.body),
            tokens.issue(feed_id, batch.number),
            _history_done(feed, batch.number),
        )

    # -- push -----------------------------------------------------------------------------------

    def next_push_sync(
        self,
        session: Session,
        feed_id: str,
        worker: str,
        now: datetime,
        lease_until: datetime,
        known: StoredBatch | None = None,
    ) -> PushBatch | None | Literal[False]:
        """The batch to deliver next (the unacknowledged one again, or a new cut), None when
        there is nothing, or False when ``worker`` no longer holds the feed's lease. The lease
        is renewed to ``lease_until``: a delivery starts with a whole lease ahead of it.
        ``known`` is a batch of this feed stored earlier (cut ahead): used instead of reading
        it back when it is the one due (a stored batch never changes)."""
        feed = feeds.get(session, feed_id, lock=True)
        if feed is None or feed.lease_owner != worker or feed.expires_at <= now:
            return False
        feeds.set_fields(session, feed_id, lease_until=lease_until)
        return self._due(session, feed, now, known)

    def _due(
        self, session: Session, feed: Feed, now: datetime, known: StoredBatch | None
    ) -> PushBatch | None:
        """The batch due on a feed whose row this transaction locked (see ``next_push_sync``)."""
        if feed.built_batch > feed.acked_batch:
            due = feed.acked_batch + 1
            batch = known if known and known.number == due else feeds.batch(session, feed.id, due)
        else:
            batch = self._cut(session, feed, now, self.limits.max_jobs)
            if batch is None:  # nothing to send (the usual answer of a caught-up feed)
                return None
            fresh = feeds.get(session, feed.id)  # as the cut left it
            assert fresh is not None
            feed = fresh
        return None if batch is None else PushBatch(feed, batch)

    def plan_ahead_sync(
        self,
        session: Session,
        push: PushBatch,
        start: int,
        read: ChunkReader | None = None,
    ) -> HistoryPlan:
        """Read the history batch after job id ``start`` of ``push``'s feed (``push`` in
        flight, or one before it), without locking the feed, so that the acknowledgements
        need not wait for it (``store_ahead_sync`` stores it, checking the feed then): what a
        feed reads from its snapshot never changes. ``read``: the feed's ``job_stream``."""
        feed = push.feed
        selection = selection_of(feed.attributes, feed.conditions, self.registry)
        return plan_history(session, feed, selection, self.limits, start, read)

    def job_stream(self, feed: Feed) -> ChunkReader | None:
        """On PostgreSQL, a reader of the feed's history jobs for ``plan_ahead_sync`` that
        reads the next chunk, in its own unit of work, while one is cut (``feed.jobstream``):
        PostgreSQL encodes one chunk's records on one core while the worker matches and stores
        the chunk before on the other. None elsewhere (SQLite: one writer, and its reads are
        cheap beside its commits)."""
        if self.db.engine.dialect.name != "postgresql":
            return None
        selection = selection_of(feed.attributes, feed.conditions, self.registry)
        snapshot = feed.snapshot_seq

        def fetch(after: int, want: int) -> list[HistoryJob]:
            return self.db.run_sync(
                lambda s: chunk_encoded_in_sql(s, selection, after, want, snapshot)
            )

        return JobStream(fetch, self._ahead, self.limits.max_jobs)

    def store_ahead_sync(
        self,
        session: Session,
        push: PushBatch,
        worker: str,
        plan: HistoryPlan,
        built: int,
        now: datetime,
    ) -> ReadAhead | None:
        """Store a history batch read ahead (``plan_ahead_sync``) as batch ``built + 1`` if
        the feed stands where the read began, with ``built`` batches: the push worker's
        ``HistoryReader`` reads and stores the batches after ``push`` (in flight) back to back,
        so that a delivery only sends. None when the feed stands elsewhere (nothing stored).

        As in ``cut_ahead_sync``, the commit need not wait for the disk: the batch is sent only
        after the ordinary commit that acknowledges its predecessor."""
        feeds.commit_without_flush_wait(session)
        expected = replace(push.feed, built_batch=built)
        cut = store_history_if_current(session, expected, worker, plan, now)
        return None if cut is None else ReadAhead(cut.batch, plan.after, plan.exhausted)

    def cut_ahead_sync(
        self, session: Session, push: PushBatch, worker: str, now: datetime
    ) -> StoredBatch | None:
        """Cut the batch after ``push`` (in flight) if it is not cut yet (outside a history,
        or where the history's reader stopped): the worker prepares the next batch while the
        receiver reads this one.

        Its commit need not wait for the disk: the batch is sent only after a later ordinary
        commit (the acknowledgement of ``push``), which makes everything before it durable,
        this one included; a crash before that loses only a cut nobody has seen (cut again
        later)."""
        feeds.commit_without_flush_wait(session)
        feed = feeds.get(session, push.feed.id, lock=True)
        if feed is None or feed.lease_owner != worker or feed.built_batch != push.batch.number:
            return None
        return self._cut(session, feed, now, self.limits.max_jobs)

    def ack_and_next_sync(
        self,
        session: Session,
        push: PushBatch,
        worker: str,
        now: datetime,
        lease_until: datetime,
        known: StoredBatch | None = None,
    ) -> PushBatch | None | Literal[False]:
        """Record that ``push`` was acknowledged, then ``next_push_sync``, in one transaction,
        the feed's row read, locked and moved by one statement (the delivery's critical path);
        False when the lease was lost meanwhile."""
        fields = _acked_fields(push, now)
        if "lease_owner" not in fields:  # not done with the feed: renew the lease
            fields["lease_until"] = lease_until
        feed = feeds.set_fields_returning(session, push.feed.id, {"lease_owner": worker}, **fields)
        if feed is None:
            return False
        feeds.drop_batches_below(session, feed.id, push.batch.number + 1)
        if feed.lease_owner != worker or feed.expires_at <= now:
            return False
        return self._due(session, feed, now, known)

    def fail_sync(
        self, session: Session, feed_id: str, worker: str, error: str, retry_at: datetime
    ) -> int:
        """Record a failed delivery; the number of consecutive failures."""
        feed = feeds.get(session, feed_id)
        attempts = (feed.attempts if feed else 0) + 1
        feeds.set_fields_if(
            session,
            feed_id,
            {"lease_owner": worker},
            last_error=error[:2000],
            attempts=attempts,
            next_attempt_at=retry_at,
        )
        return attempts


def _acked_fields(push: PushBatch, now: datetime) -> dict[str, Any]:
    """The feed's fields once ``push`` is acknowledged; a feed done with it lets its lease go."""
    number = push.batch.number
    fields: dict[str, Any] = {
        "acked_batch": number,
        "acked_seq": max(push.feed.acked_seq, push.batch.last_seq),
        "last_delivery_at": now,
        "last_error": None,
        "attempts": 0,
        "next_attempt_at": None,
    }
    if push.feed.phase == "done" and number >= push.feed.built_batch:
        fields["lease_owner"] = None
        fields["lease_until"] = None
    return fields


def utcnow() -> datetime:
    return datetime.now(UTC)


def build_engine(db: Database, plugins: PluginRegistry, batch_jobs: int = 200) -> FeedEngine:
    """The engine with the attribute types of the system and of the installed plugins."""
    return FeedEngine(db, plugins.attribute_types(), CutLimits(max_jobs=batch_jobs))
