"""Feed gauges of the index server, set from its database when /metrics is read."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Gauge

from jp_primary.index.feedstate import FeedState
from jp_primary.index.service import IndexCounts

FEED_UP = Gauge("jp_index_feed_subscribed", "1 when the feed has a live subscription", ["feed"])
FEED_HISTORY = Gauge("jp_index_feed_history_done", "1 once the history has arrived", ["feed"])
FEED_FAILURES = Gauge("jp_index_feed_failures", "failed calls in a row", ["feed"])
FEED_RECORDS = Gauge("jp_index_feed_records", "records applied from the feed", ["feed"])
FEED_LAST_SEQ = Gauge("jp_index_feed_last_seq", "newest change sequence applied", ["feed"])
FEED_LAG = Gauge("jp_index_feed_lag_seconds", "lag as the primary reports it", ["feed"])
FEED_DELIVERY = Gauge(
    "jp_index_feed_last_delivery_timestamp_seconds", "when records last arrived", ["feed"]
)
FEED_SUBSCRIPTIONS = Gauge("jp_index_feed_subscriptions", "subscriptions made", ["feed"])
JOBS = Gauge("jp_index_jobs", "jobs in the index")
VALUES = Gauge("jp_index_values", "attribute values in the index")


def observe(states: Sequence[FeedState], counts: IndexCounts) -> None:
    for s in states:
        FEED_UP.labels(s.name).set(1 if s.remote_id else 0)
        FEED_HISTORY.labels(s.name).set(1 if s.history_done else 0)
        FEED_FAILURES.labels(s.name).set(s.failures)
        FEED_RECORDS.labels(s.name).set(s.records)
        FEED_LAST_SEQ.labels(s.name).set(s.last_seq or 0)
        FEED_LAG.labels(s.name).set(s.remote_lag or 0)
        FEED_SUBSCRIPTIONS.labels(s.name).set(s.subscriptions)
        if s.last_delivery_at is not None:
            FEED_DELIVERY.labels(s.name).set(s.last_delivery_at.timestamp())
    JOBS.set(counts.jobs)
    VALUES.set(counts.values)
