"""Reading a history: PostgreSQL encodes a chunk's records in its query, and they must be the
records the Python encoder makes (SQLite's path, and the continuous phase's), value for value;
a batch read ahead of the feed's lock is stored only if the feed still stands where it began, and
batches stored ahead of a failed delivery follow it unchanged."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select

from jp_primary.attributes.registry import default_registry
from jp_primary.db.models import SQLModel
from jp_primary.db.repositories import feeds, values
from jp_primary.db.repositories.feeds import Feed
from jp_primary.feed.cutter import CutLimits, chunk_encoded_here, chunk_encoded_in_sql
from jp_primary.feed.dispatcher import DispatchSettings, FeedDispatcher
from jp_primary.feed.engine import FeedEngine, PushBatch, utcnow
from jp_primary.feed.spec import Subscription, qualified_attributes, selection_of
from tests.feed.test_purge import engine_of
from tests.helpers import ALICE, Api, new_jobid, post_job, registered_key

TAG = "http://egee.cesnet.cz/en/WSDL/jp-lbtag"
AWKWARD = ['say "hi"', "back\\slash", "new\nline\ttab", "\x01\x1f\x7f", "žluťoučký 😀", "%_*"]


def _ids(api: Api, column: str, wanted: list[str]) -> list[int]:
    """The ids of the jobs whose ``column`` is one of ``wanted``, in id order."""
    jobs = SQLModel.metadata.tables["jobs"]
    query = select(jobs.c.id).where(jobs.c[column].in_(wanted)).order_by(jobs.c.id)
    return [int(r[0]) for r in engine_of(api).db.run_sync(lambda s: s.execute(query).all())]


def _register(api: Api, count: int) -> list[int]:
    keys = [registered_key(post_job(api, new_jobid(), ALICE)) for _ in range(count)]
    return _ids(api, "key", keys)


def _store(api: Api, job_id: int, pairs: list[tuple[str, str, str | None]]) -> None:
    at = datetime(1999, 12, 31, 23, 59, 59, 5, tzinfo=UTC)
    new = [values.NewValue(n, v, "USER", at, origin_detail=d) for n, v, d in pairs]
    engine_of(api).db.run_sync(lambda s: values.append(s, job_id, new))


def _decoded(chunk: list[Any]) -> list[tuple[int, bool, Any, list[tuple[str, str, str]]]]:
    return [(j.job_id, j.present, orjson.loads(j.record), sorted(j.tested)) for j in chunk]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize(
    ("attributes", "conditions"),
    [
        (["tag:a", "tag:b", "system:owner", "system:regtime"], []),
        (["tag:*"], [{"attr": "tag:a", "op": "prefix", "value": "say"}]),
        (["tag:b"], [{"attr": "tag:zz", "op": "exists"}]),
        (["tag:%_*"], []),
    ],
)
def test_records_encoded_by_postgresql_equal_the_python_encoding(
    api: Api, attributes: list[str], conditions: list[dict[str, str]]
) -> None:
    first, second, third, late = _register(api, 4)
    _store(api, first, [(f"{TAG}:a", t, None) for t in AWKWARD])
    _store(api, second, [(f"{TAG}:B", "x", 'file 7 "lb"'), (f"{TAG}:%_x", "odd", None)])
    _store(api, third, [(f"{TAG}:a", "say", None), (f"{TAG}:zz", "1", "d")])
    snapshot = engine_of(api).db.run_sync(values.last_seq)
    _store(api, late, [(f"{TAG}:a", "after the snapshot", None)])
    selection = selection_of(qualified_attributes(attributes), conditions, default_registry())

    def both(snap: int) -> tuple[Any, Any]:
        db = engine_of(api).db
        in_sql = db.run_sync(lambda s: chunk_encoded_in_sql(s, selection, first - 1, 4, snap))
        here = db.run_sync(lambda s: chunk_encoded_here(s, selection, first - 1, 4, snap))
        return _decoded(in_sql), _decoded(here)

    in_sql, here = both(snapshot)
    assert in_sql == here
    assert [j[0] for j in in_sql] == [first, second, third, late]
    tags_of_first = [v["value"] for v in in_sql[0][2]["values"] if v["name"] == f"{TAG}:a"]
    if "tag:a" in attributes:
        assert tags_of_first == AWKWARD
    # Before any of them existed: no job has a value up to that snapshot.
    in_sql, here = both(snapshot - 10_000_000)
    assert in_sql == here
    assert not any(present for _, present, _, _ in in_sql)


def _colored_history(
    api: Api, prefix: str, count: int, destination: str
) -> tuple[list[int], FeedEngine, Feed]:
    """``count`` jobs tagged with a color of their own, and a push feed of their history
    (batches of two jobs) on an engine of the test's database."""
    color = f"{prefix}-{new_jobid()[-12:]}"
    jobs = _register(api, count)
    for job_id in jobs:
        _store(api, job_id, [(f"{TAG}:color", color, None)])
    engine = FeedEngine(engine_of(api).db, default_registry(), CutLimits(max_jobs=2))
    sub = Subscription(
        attributes=qualified_attributes(["tag:color"]),
        conditions=[{"attr": "tag:color", "op": "eq", "value": color}],
        history=True,
        continuous=False,
        ttl_seconds=600,
        destination=destination,
    )
    feed = api.client.portal.call(engine.subscribe, f"/CN={prefix}", sub, utcnow())  # type: ignore[union-attr]
    return jobs, engine, feed


def test_a_batch_read_ahead_is_stored_only_where_the_feed_stands(api: Api) -> None:
    """The push worker reads a history batch before the feed's lock is taken; a read that no
    longer starts where the feed stands is dropped and the batch is cut afresh."""
    jobs, engine, feed = _colored_history(api, "read-ahead", 5, "http://127.0.0.1:9/unused")
    worker, now = "w-read-ahead", utcnow()
    until = now + timedelta(minutes=5)
    db = engine.db
    db.run_sync(lambda s: feeds.set_fields(s, feed.id, lease_owner=worker, lease_until=until))

    def ids_in(batch: Any) -> list[int]:
        keys = [r["jobid"] for r in orjson.loads(batch.body)]
        return _ids(api, "jobid", keys)

    first = db.run_sync(lambda s: engine.next_push_sync(s, feed.id, worker, now, until))
    assert isinstance(first, PushBatch)
    assert ids_in(first.batch) == jobs[:2]
    # Read from a place the feed does not stand at: not stored; the next batch is cut afresh.
    stale = db.run_sync(lambda s: engine.plan_ahead_sync(s, first, 0))
    assert stale.start == 0
    built = first.batch.number
    assert (
        db.run_sync(lambda s: engine.store_ahead_sync(s, first, worker, stale, built, now)) is None
    )
    second = db.run_sync(lambda s: engine.cut_ahead_sync(s, first, worker, now))
    assert second is not None
    assert second.number == 2
    assert ids_in(second) == jobs[2:4]
    # Read where it stands (before batch 2 is acknowledged, as the worker's reader does):
    # stored as read, as batch 3, and it ends the history.
    after = db.run_sync(lambda s: feeds.get(s, feed.id))
    assert after is not None
    plan = db.run_sync(lambda s: engine.plan_ahead_sync(s, first, after.history_after_job))
    assert plan.matched == jobs[4:]
    ahead = db.run_sync(lambda s: engine.store_ahead_sync(s, first, worker, plan, 2, now))
    assert ahead is not None
    assert ahead.exhausted
    third = ahead.batch
    assert third is not None
    assert third.number == 3
    assert third.history_done
    assert ids_in(third) == jobs[4:]
    # Stored once only: the same read again does not stand where the feed does.
    assert db.run_sync(lambda s: engine.store_ahead_sync(s, first, worker, plan, 2, now)) is None
    pushed = db.run_sync(lambda s: engine.ack_and_next_sync(s, first, worker, now, until, second))
    assert isinstance(pushed, PushBatch)
    assert pushed.batch == second
    assert pushed.feed.acked_batch == 1
    assert pushed.feed.built_batch == 3


def test_a_delivery_failed_mid_history_is_resent_and_the_batches_stored_ahead_follow(
    api: Api,
) -> None:
    """The worker's reader stores batches ahead of the one in flight; when that one fails, it
    is sent again, same number and bytes, and the stored ones follow it in order."""
    jobs, engine, feed = _colored_history(api, "retry", 9, "http://receiver.invalid/feed")
    bodies: list[bytes] = []  # this feed's deliveries, in order

    def answer(request: httpx.Request) -> httpx.Response:
        if orjson.loads(request.content)["feed_id"] != feed.id:
            return httpx.Response(200)  # another test's feed: not looked at
        bodies.append(request.content)
        first_try_of_3 = [orjson.loads(b)["batch"] for b in bodies].count(3) == 1
        return httpx.Response(500 if first_try_of_3 and _number(request.content) == 3 else 200)

    async def deliver() -> None:
        client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
        settings = DispatchSettings(retry_base=0.01, retry_cap=0.05, poll_interval=0.01)
        worker = asyncio.create_task(FeedDispatcher(engine, settings, client, "w-retry").run())
        deadline = time.monotonic() + 60
        while not (bodies and orjson.loads(bodies[-1])["history_done"]):
            assert time.monotonic() < deadline, "the history did not end"
            await asyncio.sleep(0.02)
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker

    asyncio.run(deliver())
    assert [_number(b) for b in bodies] == [1, 2, 3, 3, 4, 5]
    assert bodies[2] == bodies[3]
    # Every job once, in order, the failed batch counted once.
    sent = [r["jobid"] for b in bodies[:2] + bodies[3:] for r in orjson.loads(b)["records"]]
    assert len(sent) == len(jobs)
    assert _ids(api, "jobid", sent) == jobs


def _number(body: bytes) -> int:
    return int(orjson.loads(body)["batch"])
