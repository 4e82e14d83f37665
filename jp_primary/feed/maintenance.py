"""Purging what feeds no longer need: expired feeds after their grace period, and tombstones no
live feed can still read (``FeedEngine.purge``).

It runs in every ``jp-primary serve`` process, with or without its push worker, and in
``jp-primary feed-worker``: at startup and then every ``MAINTENANCE_INTERVAL`` seconds. Several
processes purging at once is harmless (each deletes what is still there).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from jp_primary.feed.engine import FeedEngine, utcnow

log = logging.getLogger(__name__)
MAINTENANCE_INTERVAL = 300.0


async def purge_forever(
    engine: FeedEngine, grace: timedelta, interval: float = MAINTENANCE_INTERVAL
) -> None:
    """Purge now and then every ``interval`` seconds until cancelled."""
    while True:
        try:
            purged = await engine.purge(utcnow(), grace)
            if purged.feeds or purged.tombstones:
                log.info(
                    "purged %d expired feed(s), %d tombstone(s)", purged.feeds, purged.tombstones
                )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("feed purge failed; trying again in %.0f s", interval)
        await asyncio.sleep(interval)
