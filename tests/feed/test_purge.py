"""Purging what feeds no longer need (SQLite and PostgreSQL): tombstones once no live feed can
read them, expired feeds also in a process without a push worker."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import bindparam, text

from jp_primary.app import create_app
from jp_primary.auth.identity import Role
from jp_primary.config import FeedSettings
from jp_primary.db.repositories import feeds
from jp_primary.feed.engine import TOMBSTONE_MIN_AGE, FeedEngine, Purged, utcnow
from tests.feed.test_pull import created, drain, squatted_job_feed, subscribe
from tests.helpers import ALICE, LB_HOST, Api, make_settings, post_job

# Later than any feed of the session's other tests can live (JP_FEED_MAX_TTL is 7 days): at this
# time only the feeds a test keeps alive on purpose are live.
LATER = timedelta(days=30)
NO_FEED_PURGE = timedelta(days=3650)


def engine_of(api: Api) -> FeedEngine:
    return api.client.app.state.services.feeds.engine  # type: ignore[attr-defined,no-any-return]


def purge(api: Api, now: datetime) -> Purged:
    return api.client.portal.call(engine_of(api).purge, now, NO_FEED_PURGE)  # type: ignore[union-attr]


def _by_seqs(sql: str) -> Any:
    return text(sql).bindparams(bindparam("seqs", expanding=True))


def kept(api: Api, seqs: list[int]) -> list[int]:
    query = _by_seqs("SELECT seq FROM retracted_values WHERE seq IN :seqs ORDER BY seq")
    rows = engine_of(api).db.run_sync(lambda s: s.execute(query, {"seqs": seqs}).all())
    return [int(r[0]) for r in rows]


def set_retracted_at(api: Api, seqs: list[int], at: datetime) -> None:
    update = _by_seqs("UPDATE retracted_values SET retracted_at = :at WHERE seq IN :seqs")
    engine_of(api).db.run_sync(lambda s: s.execute(update, {"at": at, "seqs": seqs}))


def test_tombstones_are_kept_while_a_live_feed_can_read_them_then_purged(api: Api) -> None:
    jobid, squatter, key, feed = squatted_job_feed(api)
    # This feed outlives every other feed of the session: at LATER it alone is live.
    forever = utcnow() + timedelta(days=3650)
    engine_of(api).db.run_sync(lambda s: feeds.set_fields(s, feed, expires_at=forever))
    _, token = drain(api, feed)
    before = api.client.get(f"/v1/jobs/{key}/attributes", headers=api.auth(squatter)).json()
    old_seqs = sorted(v["seq"] for v in before["values"])
    taken = post_job(api, jobid, LB_HOST, ALICE, Role.TRUSTED)  # the takeover retracts them
    assert taken.status_code == 201, taken.text
    assert kept(api, old_seqs) == old_seqs
    later = utcnow() + LATER

    # The feed has not read past them yet: kept, however old.
    purge(api, later)
    assert kept(api, old_seqs) == old_seqs
    records, token = drain(api, feed, token)
    assert [r.get("retracted") for r in records] == [old_seqs]

    # Read past now, but recorded too recently to be sure no subscription is under way.
    set_retracted_at(api, old_seqs, later - TOMBSTONE_MIN_AGE + timedelta(seconds=5))
    purge(api, later)
    assert kept(api, old_seqs) == old_seqs

    set_retracted_at(api, old_seqs, later - TOMBSTONE_MIN_AGE - timedelta(seconds=5))
    assert purge(api, later).tombstones >= len(old_seqs)
    assert kept(api, old_seqs) == []
    # The feed goes on after the purge: nothing is lost to it, nothing repeated.
    again, _ = drain(api, feed, token)
    assert again == []


def test_expired_feeds_are_purged_by_a_server_without_a_push_worker(
    api: Api, database_url: str, tmp_path: Path
) -> None:
    feed = created(subscribe(api, ttl_seconds=60))
    engine = engine_of(api)
    past = utcnow() - timedelta(seconds=10)
    engine.db.run_sync(lambda s: feeds.set_fields(s, feed, expires_at=past))
    assert engine.db.run_sync(lambda s: feeds.get(s, feed)) is not None

    settings = make_settings(tmp_path / "no-worker", database_url).model_copy(
        update={"feed": FeedSettings(worker=False, purge_grace=0)}
    )
    # Its startup purges: no push worker runs in it, and none is needed for that.
    with TestClient(create_app(settings)):
        deadline = time.monotonic() + 20
        while engine.db.run_sync(lambda s: feeds.get(s, feed)) is not None:
            assert time.monotonic() < deadline, "the expired feed was not purged"
            time.sleep(0.1)
