"""The feed lifecycle step by step against a fake primary (``httpx.MockTransport``: the primary is
outside the index server): subscribe, pull with the token kept, refresh at half-life, give up
after repeated failures or when the primary forgets the feed, subscribe again with history."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from jp_primary.index import feedstate
from jp_primary.index.config import parse_config
from jp_primary.index.lifecycle import FeedLifecycle
from jp_primary.index.service import IndexServices
from jp_primary.index.tables import values
from tests.helpers import ALICE, new_jobid

CONFIG = """
[server]
public_url = "http://index.example.org:8902"
database_url = "{url}"

[[attributes]]
name = "lb:status"
indexed = true

[[feeds]]
name = "p"
url = "http://primary.example.org"
token = "indexer-token"
mode = "pull"
ttl_seconds = 20
history = false

[[feeds]]
name = "q"
url = "http://primary.example.org"
token = "indexer-token"
mode = "push"
ttl_seconds = 20
"""


class FakePrimary:
    def __init__(self) -> None:
        self.subscriptions: list[dict[str, Any]] = []
        self.cancelled: list[str] = []
        self.refresh_status = 200
        self.pages: list[tuple[int, dict[str, Any]]] = []
        self.since: list[str | None] = []
        self.authorization: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.authorization.add(request.headers.get("authorization", ""))
        path, method = request.url.path, request.method
        expires = (datetime.now(UTC) + timedelta(seconds=20)).isoformat()
        if method == "POST" and path == "/v1/feeds":
            self.subscriptions.append(json.loads(request.content))
            feed_id = f"f{len(self.subscriptions)}"
            return httpx.Response(201, json={"feed_id": feed_id, "expires_at": expires})
        feed_id = path.split("/")[3]
        if path.endswith("/refresh"):
            if self.refresh_status != 200:
                body = {"error": "X", "detail": "no"}
                return httpx.Response(self.refresh_status, json=body)
            return httpx.Response(200, json={"expires_at": expires})
        if path.endswith("/changes"):
            self.since.append(request.url.params.get("since"))
            status, body = self.pages.pop(0)
            return httpx.Response(status, json=body)
        if method == "DELETE":
            self.cancelled.append(feed_id)
            return httpx.Response(204)
        return httpx.Response(200, json={"feed_id": feed_id, "lag_seconds": 1.5})


def _record(jobid: str, *seqs: int) -> dict[str, Any]:
    vals = [
        {"name": "lb:status", "value": "Done", "origin": "FILE", "timestamp": None, "seq": s}
        for s in seqs
    ]
    return {"jobid": jobid, "owner": ALICE, "values": vals}


def _setup(index_db_url: str) -> tuple[IndexServices, FeedLifecycle, FakePrimary]:
    engine = sa.create_engine(index_db_url)
    with engine.begin() as conn:
        for table in ("index_values", "index_feed_jobs", "index_jobs", "index_feeds"):
            conn.execute(sa.text(f"DELETE FROM {table}"))  # noqa: S608  (fixed table names)
    engine.dispose()
    config = parse_config(CONFIG.format(url=index_db_url))
    services = IndexServices.build(config)
    fake = FakePrimary()
    lifecycle = FeedLifecycle(config, services.db, services.applier, httpx.MockTransport(fake))
    return services, lifecycle, fake


def _state(services: IndexServices, name: str) -> feedstate.FeedState:
    state = services.db.run_sync(lambda conn: feedstate.get(conn, name))
    assert state is not None
    return state


def _due(services: IndexServices, name: str, **when: datetime) -> None:
    services.db.run_sync(lambda conn: feedstate.update(conn, name, **when))


def _count(services: IndexServices) -> int:
    query = sa.select(sa.func.count()).select_from(values)
    return int(services.db.run_sync(lambda conn: conn.execute(query).scalar_one()))


def test_pull_keeps_its_token_and_a_forgotten_feed_is_subscribed_again(index_db_url: str) -> None:
    services, lifecycle, fake = _setup(index_db_url)
    feed = services.config.feeds[0]
    job = new_jobid()

    async def run() -> None:
        await lifecycle.start(run=False)
        await lifecycle.step(feed)  # subscribe
        fake.pages = [
            (200, {"records": [_record(job, 1, 2)], "next": "t1", "history_done": False}),
            (200, {"records": [], "next": "t2", "history_done": True}),
            (410, {"error": "Gone", "detail": "resubscribe"}),
            (200, {"records": [_record(job, 1, 2, 3)], "next": "u1", "history_done": True}),
        ]
        for _ in range(3):
            await lifecycle.step(feed)  # two pages, then 410
        assert _state(services, "p").remote_id is None
        await lifecycle.step(feed)  # subscribe again
        await lifecycle.step(feed)  # the new feed's history repeats seqs 1 and 2
        await lifecycle.stop()

    asyncio.run(run())
    assert fake.authorization == {"Bearer indexer-token"}
    assert [s["history"] for s in fake.subscriptions] == [False, True]
    assert "destination" not in fake.subscriptions[0]  # pull
    assert fake.since == [None, "t1", "t2", None]
    assert fake.cancelled == ["f1"]
    state = _state(services, "p")
    assert (state.remote_id, state.pull_token, state.subscriptions) == ("f2", "u1", 2)
    assert state.history_done
    assert _count(services) == 3  # seqs 1, 2, 3 once each


def test_repeated_refresh_failures_give_the_subscription_up(index_db_url: str) -> None:
    services, lifecycle, fake = _setup(index_db_url)
    feed = services.config.feeds[1]
    past = datetime.now(UTC) - timedelta(seconds=1)

    async def run() -> None:
        await lifecycle.start(run=False)
        await lifecycle.step(feed)  # subscribe
        state = _state(services, "q")
        assert fake.subscriptions[0]["destination"].endswith(f"/v1/push/q/{state.secret}")
        refresh_at = state.refresh_at
        assert refresh_at is not None
        half = (refresh_at.replace(tzinfo=UTC) - datetime.now(UTC)).total_seconds()
        assert 8 < half <= 10  # half of the 20 s lifetime
        _due(services, "q", refresh_at=past)
        await lifecycle.step(feed)  # refreshed; the primary's lag read
        assert _state(services, "q").remote_lag == 1.5
        fake.refresh_status = 503
        for failures in (1, 2):
            _due(services, "q", refresh_at=past)
            await lifecycle.step(feed)
            assert _state(services, "q").failures == failures
            assert _state(services, "q").remote_id == "f1"
        _due(services, "q", refresh_at=past)
        await lifecycle.step(feed)  # the third failure in a row
        assert _state(services, "q").remote_id is None
        fake.refresh_status = 200
        await lifecycle.step(feed)
        _due(services, "q", expires_at=past)  # expired before it could be refreshed
        await lifecycle.step(feed)
        await lifecycle.step(feed)
        await lifecycle.stop()

    asyncio.run(run())
    assert fake.cancelled == ["f1", "f2"]
    assert [s["history"] for s in fake.subscriptions] == [True, True, True]
    state = _state(services, "q")
    assert (state.remote_id, state.subscriptions, state.failures) == ("f3", 3, 0)
    assert state.last_error is not None
