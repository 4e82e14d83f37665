"""The index server against real primaries: two ``jp-primary serve`` (one SQLite, one PostgreSQL)
and one ``jp-primary index-server``, all real processes over HTTP.

Primary A pushes to the index; the index pulls from primary B. The steps share the processes
(starting them is most of the cost), so they run in order inside one test per concern.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jp_primary.auth.identity import Role
from jp_primary.db import migrate
from jp_primary.testing.lbdumps import generate_job
from tests.conftest import create_pg_database
from tests.helpers import ALICE, BOB, new_jobid
from tests.index.processes import IndexServer, Primary, wait_for

pytestmark = pytest.mark.slow
ADMIN = "/CN=index operator"
INDEXER = "/CN=the index server"
STATUS = "http://egee.cesnet.cz/en/Schema/LB/Attributes:status"
COLOR = "http://egee.cesnet.cz/en/WSDL/jp-lbtag:color"


def _config(primary_a: Primary, primary_b: Primary, ttl: int) -> Any:
    def text(index: IndexServer) -> str:
        for primary in (primary_a, primary_b):
            token = primary.tokens.issue(INDEXER, [Role.INDEXER], 86400)
            (index.home / f"{primary.name}.token").write_text(token)
        return f"""
[server]
port = {index.port}
public_url = "{index.url}"
home = "{index.home}"

[[attributes]]
name = "lb:status"
indexed = true

[[attributes]]
name = "jp:regtime"
indexed = true

[[attributes]]
name = "lb:doneCode"

[[attributes]]
name = "tag:color"
indexed = true

[[feeds]]
name = "a"
url = "{primary_a.url}"
token_file = "{index.home / "a.token"}"
mode = "push"
ttl_seconds = {ttl}

[[feeds]]
name = "b"
url = "{primary_b.url}"
token_file = "{index.home / "b.token"}"
mode = "pull"
pull_wait = 2
ttl_seconds = {ttl}
"""

    return text


class System:
    def __init__(self, tmp: Path, pg_url: str) -> None:
        sqlite_url = f"sqlite:///{tmp / 'a' / 'jp.sqlite'}"
        (tmp / "a").mkdir()
        migrate.upgrade(sqlite_url)
        migrate.upgrade(pg_url)
        self.a = Primary("a", tmp / "a", sqlite_url)
        self.b = Primary("b", tmp / "b", pg_url)
        self.index = IndexServer(tmp / "index", _config(self.a, self.b, ttl=12))
        self.rng = random.Random(12)

    def start(self) -> None:
        self.a.start()
        self.b.start()
        self.index.start()

    def stop(self) -> None:
        for process in (self.index, self.a, self.b):
            process.kill()

    def register(self, primary: Primary, owner: str, dump: bool = True) -> str:
        jobid = new_jobid()
        with primary.client() as client:
            trusted = primary.auth("/CN=lb.example.org", Role.TRUSTED)
            response = client.post(
                "/v1/jobs", json={"jobid": jobid, "owner": owner}, headers=trusted
            )
            assert response.status_code == 201, response.text
            key = response.json()["key"]
            if dump:
                lines = generate_job(self.rng, "done", jobid=jobid)
                put = client.put(
                    f"/v1/jobs/{key}/files/lb", content="\n".join(lines) + "\n", headers=trusted
                )
                assert put.status_code == 201, put.text
        return jobid

    def tag(self, primary: Primary, jobid: str, owner: str, value: str) -> None:
        key = jobid.rpartition("/")[2]
        with primary.client() as client:
            response = client.post(
                f"/v1/jobs/{key}/tags",
                json={"name": "color", "value": value},
                headers=primary.auth(owner),
            )
            assert response.status_code == 201, response.text

    def indexed(self, where: list[dict[str, Any]] | None = None, **body: Any) -> dict[str, Any]:
        """jobid -> job, as the index's admin sees it."""
        where = where or [{"attr": "lb:status", "op": "exists"}]
        jobs = self.index.query(ADMIN, Role.ADMIN, where=where, **body)
        return {j["jobid"]: j for j in jobs}

    def primary_values(self, primary: Primary, jobid: str) -> list[tuple[str, str, int]]:
        key = jobid.rpartition("/")[2]
        with primary.client() as client:
            response = client.get(
                f"/v1/jobs/{key}/attributes",
                params={"name": ["lb:status", "tag:color"]},
                headers=primary.auth(ADMIN, Role.ADMIN),
            )
        assert response.status_code == 200, response.text
        return sorted((v["name"], v["value"], v["seq"]) for v in response.json()["values"])

    def index_values(self, jobid: str) -> list[tuple[str, str, int]]:
        found = self.indexed(
            [{"attr": "jp:jobId", "op": "eq", "value": jobid}], select=["lb:status", "tag:color"]
        )
        return sorted(
            (v["name"], v["value"], v["seq"]) for j in found.values() for v in j["values"]
        )


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    pg_url, drop = create_pg_database()
    running = System(tmp_path_factory.mktemp("e2e"), pg_url)
    try:
        running.start()
        yield running
    finally:
        running.stop()
        drop()


def test_jobs_of_both_primaries_are_indexed_and_queried_together(system: System) -> None:
    a_jobs = [system.register(system.a, ALICE), system.register(system.a, BOB)]
    b_jobs = [system.register(system.b, ALICE), system.register(system.b, BOB)]
    found = wait_for(
        "all four jobs in the index", lambda: len(system.indexed()) >= 4 and system.indexed()
    )
    for jobid in a_jobs:
        assert found[jobid]["primary_storage"] == system.a.url
    for jobid in b_jobs:
        assert found[jobid]["primary_storage"] == system.b.url
    # One query spanning both primaries: the jobs that are Done, with their values.
    done = system.indexed(
        [{"attr": "lb:status", "op": "eq", "value": "Done"}], select=["lb:status"]
    )
    assert set(a_jobs + b_jobs) <= set(done)
    for jobid in a_jobs:
        assert system.index_values(jobid) == system.primary_values(system.a, jobid)
    for jobid in b_jobs:
        assert system.index_values(jobid) == system.primary_values(system.b, jobid)
    # Owners see only their own jobs, whichever primary they came from.
    mine = system.index.query(ALICE, where=[{"attr": "lb:status", "op": "exists"}])
    assert {j["jobid"] for j in mine} >= {a_jobs[0], b_jobs[0]}
    assert {j["owner"] for j in mine} == {ALICE}
    feeds = system.index.feeds()
    assert feeds["a"]["history_done"]
    assert feeds["b"]["history_done"]
    assert feeds["a"]["mode"] == "push"
    assert feeds["b"]["mode"] == "pull"
    metrics = httpx.get(f"{system.index.url}/metrics").text
    assert 'jp_index_feed_subscribed{feed="a"} 1.0' in metrics


def test_a_tag_reaches_the_index_within_a_second(system: System) -> None:
    jobid = system.register(system.a, ALICE)
    wait_for("the job in the index", lambda: jobid in system.indexed())
    started = time.monotonic()
    system.tag(system.a, jobid, ALICE, "crimson")
    where = [{"attr": "tag:color", "op": "eq", "value": "crimson"}]
    wait_for("the tag in the index", lambda: jobid in system.indexed(where), timeout=10)
    took = time.monotonic() - started
    print(f"tag on the primary -> index answer: {took:.3f} s")
    # The issue's target is one second; the 2-core test machine gets a margin for scheduling.
    assert took < 3.0


def test_reextraction_retracts_the_old_values(system: System) -> None:
    jobid = system.register(system.b, BOB)
    wait_for("the job in the index", lambda: jobid in system.indexed())
    before = system.index_values(jobid)
    result = system.b.cli("reextract", "--job", jobid.rpartition("/")[2])
    assert result.returncode == 0, result.stderr
    after_primary = system.primary_values(system.b, jobid)
    assert after_primary != before  # the same values under new seqs
    wait_for("the index to follow", lambda: system.index_values(jobid) == after_primary)


def test_a_primary_down_for_a_while_is_caught_up(system: System) -> None:
    subscriptions = system.index.feeds()["a"]["subscriptions"]
    system.a.kill()
    # Long enough for the index's refreshes to fail and the subscription to be given up.
    wait_for(
        "the index to notice",
        lambda: (
            system.index.feeds()["a"]["failures"] > 0
            or system.index.feeds()["a"]["subscriptions"] > subscriptions
            or system.index.feeds()["a"]["feed_id"] is None
        ),
        timeout=30,
    )
    time.sleep(3)
    system.a.start()
    later = [system.register(system.a, ALICE) for _ in range(3)]
    wait_for("the new jobs in the index", lambda: set(later) <= set(system.indexed()), timeout=60)
    everything = system.indexed(select=["lb:status", "tag:color"])
    for jobid, job in everything.items():
        if job["primary_storage"] == system.a.url:
            assert system.index_values(jobid) == system.primary_values(system.a, jobid), jobid


def test_the_index_killed_and_restarted_resumes_without_rereading_history(system: System) -> None:
    before = system.index.feeds()
    system.index.kill()  # SIGKILL
    missed = [system.register(system.a, BOB), system.register(system.b, BOB)]
    system.index.start()
    wait_for("the jobs missed while down", lambda: set(missed) <= set(system.indexed()), timeout=60)
    after = system.index.feeds()
    for name in ("a", "b"):
        assert after[name]["subscriptions"] == before[name]["subscriptions"], name
        assert after[name]["feed_id"] == before[name]["feed_id"], name
    for jobid, primary in zip(missed, (system.a, system.b), strict=True):
        assert system.index_values(jobid) == system.primary_values(primary, jobid)


def test_a_feed_that_expired_on_the_primary_is_subscribed_again(system: System) -> None:
    before = system.index.feeds()
    system.index.kill()
    time.sleep(14)  # past the 12 s TTL: both feeds expire on their primaries
    missed = system.register(system.b, ALICE)
    system.index.start()
    wait_for(
        "new subscriptions",
        lambda: all(
            f["subscriptions"] > before[n]["subscriptions"] and f["history_done"]
            for n, f in system.index.feeds().items()
        ),
        timeout=60,
    )
    wait_for("the job missed while expired", lambda: missed in system.indexed(), timeout=30)
    assert system.index_values(missed) == system.primary_values(system.b, missed)
