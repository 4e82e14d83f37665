"""Batch queries (``POST /v1/query``, ``POST /v1/jobs/attributes``) and pull-mode feeds through
the client and the ``query`` command, against a live server on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path

import pytest

from jp_primary.client import AsyncClient, Credentials, NotFound
from tests.auth.served import run_cli

from .support import LB_IDENTITY, USER, Live, new_jobid, write_dump

pytestmark = pytest.mark.slow
STATUS = "http://egee.cesnet.cz/en/Schema/LB/Attributes:status"
BATCH = "http://egee.cesnet.cz/en/WSDL/jp-lbtag:batch"


@pytest.fixture(scope="module")
def batch(live: Live, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[str]]:
    """Five of Alice's jobs with a Done dump and the tag batch=<unique>, one of Bob's too."""
    label = secrets.token_hex(6)
    folder = tmp_path_factory.mktemp("dumps")
    jobs = []
    with live.client(LB_IDENTITY, "trusted") as lb, live.client(USER) as alice:
        for i in range(5):
            jobid = new_jobid()
            lb.register(jobid, USER)
            lb.put_file(jobid, "lb", write_dump(folder, jobid, seed=i))
            alice.add_tags(jobid, [("batch", label)])
            jobs.append(jobid)
    with live.client("/DC=org/DC=example/O=JP Test/CN=Bob Jones/CN=67890") as bob:
        other = new_jobid()
        bob.register(other)
        bob.add_tags(other, [("batch", label)])
    return label, jobs


def test_query_follows_the_pages(live: Live, batch: tuple[str, list[str]]) -> None:
    label, jobs = batch
    where = [{"attr": BATCH, "op": "eq", "value": label}]
    with live.client(USER) as alice:
        pages = list(alice.query_pages(where, [STATUS], limit=2))
        found = [job for page in pages for job in page.jobs]
    assert len(pages) >= 3  # 5 jobs, 2 a page
    assert sorted(j.jobid for j in found) == sorted(jobs)  # only Alice's own
    assert all(pages[i].next for i in range(len(pages) - 1))
    for job in found:
        assert {v.value for v in job.values if v.name == STATUS} == {"Done"}
    with live.client("/CN=auditor", "admin") as admin:
        assert len(list(admin.query(where, limit=3))) == 6  # Bob's too


def test_batch_attributes_lists_the_unknown(live: Live, batch: tuple[str, list[str]]) -> None:
    _label, jobs = batch
    unknown = new_jobid()
    with live.client(USER) as alice:
        answer = alice.batch_attributes([*jobs[:2], unknown], [STATUS])
    assert sorted(j.jobid for j in answer.jobs) == sorted(jobs[:2])
    assert answer.unknown == [unknown]


def test_query_command(live: Live, batch: tuple[str, list[str]]) -> None:
    label, jobs = batch
    env = {"JP_URL": live.url, "JP_TOKEN": live.token(USER)}
    done = run_cli(env, "query", "--where", BATCH, "eq", label, "--select", STATUS, "--json",
                   "--page-size", "2")  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(item["jobid"] for item in lines) == sorted(jobs)
    human = run_cli(env, "query", "--where", BATCH, "eq", label, "--max", "2")
    assert human.returncode == 0, human.stderr
    assert "2 jobs" in human.stderr
    bad = run_cli(env, "query", "--where", BATCH, "sideways", label)
    assert bad.returncode == 2
    assert "OP one of" in bad.stderr


def test_pull_feed_lifecycle(live: Live, batch: tuple[str, list[str]], tmp_path: Path) -> None:
    label, jobs = batch
    with live.client("/DC=org/DC=example/O=JP Test/CN=host/jpis.example.org", "indexer") as jpis:
        feed = jpis.subscribe(
            [STATUS, BATCH],
            [{"attr": BATCH, "op": "eq", "value": label}],
            history=True,
            continuous=True,
            ttl_seconds=600,
        )
        assert feed.mode == "pull"
        seen: set[str] = set()
        token = None
        for page in jpis.pull(feed.feed_id, wait=1, stop_when_idle=True):
            seen |= {r.jobid for r in page.records}
            token = page.next
        assert set(jobs) <= seen
        state = jpis.feed(feed.feed_id)
        assert state["feed_id"] == feed.feed_id
        assert any(f["feed_id"] == feed.feed_id for f in jpis.feeds())
        # A change after the history: a new job of the batch arrives on the next pull.
        later = new_jobid()
        with live.client(USER) as alice:
            alice.register(later)
            alice.add_tags(later, [("batch", label)])
        page = jpis.changes(feed.feed_id, token, wait=10)
        assert later in {r.jobid for r in page.records}
        assert "expires_at" in jpis.refresh_feed(feed.feed_id)
        jpis.delete_feed(feed.feed_id)
        with pytest.raises(NotFound):
            jpis.feed(feed.feed_id)


def test_async_query_and_pull(live: Live, batch: tuple[str, list[str]]) -> None:
    label, jobs = batch
    token = live.token("/DC=org/DC=example/O=JP Test/CN=host/jpis.example.org", "indexer")

    async def go() -> tuple[list[str], set[str]]:
        async with AsyncClient(live.url, credentials=Credentials(token=token)) as jpis:
            where = [{"attr": BATCH, "op": "eq", "value": label}]
            hits = [job.jobid async for job in jpis.query(where, limit=2)]
            feed = await jpis.subscribe([BATCH], where, history=True, continuous=False)
            seen: set[str] = set()
            async for page in jpis.pull(feed.feed_id, wait=1, stop_when_idle=True):
                seen |= {r.jobid for r in page.records}
            await jpis.delete_feed(feed.feed_id)
            return hits, seen

    hits, seen = asyncio.run(go())
    assert set(jobs) <= set(hits)
    assert set(jobs) <= seen
