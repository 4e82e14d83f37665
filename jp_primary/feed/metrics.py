"""Feed metrics on the process's ``/metrics`` (prometheus-client's default registry)."""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge

HEAD = Gauge("jp_change_seq_head", "The last committed change sequence number")
LAG_SEQ = Gauge("jp_feed_lag_seq", "Changes not yet acknowledged by a feed's subscriber", ["feed"])
LAG_SECONDS = Gauge(
    "jp_feed_lag_seconds",
    "Age of the oldest change a feed's subscriber has not acknowledged",
    ["feed"],
)
DELIVERED = Counter("jp_feed_batches_delivered_total", "Batches acknowledged", ["feed"])
FAILURES = Counter("jp_feed_delivery_failures_total", "Failed deliveries of push batches", ["feed"])
RETRIES = Counter("jp_feed_retries_total", "Deliveries of a batch tried before", ["feed"])


def forget(feed_id: str) -> None:
    """Drop a feed's series (it ended, or another process works it now)."""
    for metric in (LAG_SEQ, LAG_SECONDS):
        with contextlib.suppress(KeyError):
            metric.remove(feed_id)
