"""Push feeds between real processes: ``jp-primary serve`` delivering to a receiver process that
fails in every way an index server does, and a SIGKILL in the middle of a history run; pull
tokens across a SIGKILL restart."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from jp_primary.auth.identity import Role
from jp_primary.testing.receiver import check_log
from tests.crash.server import ServiceProcess
from tests.feed.procs import FAST_FEEDS, Receiver, wait_until
from tests.helpers import ALICE, new_jobid

INDEXER = "/DC=org/DC=example/CN=index.example.org"
REQUESTED = ["tag:color", "tag:n", "system:jobId"]


class Client:
    """The calls these tests make to one service process."""

    def __init__(self, service: ServiceProcess) -> None:
        self.service = service
        self.http = httpx.Client(base_url=service.base_url, timeout=30)
        self.alice = service.auth(ALICE)
        self.indexer = service.auth(INDEXER, Role.INDEXER)

    def job(self) -> str:
        answer = self.http.post("/v1/jobs", json={"jobid": new_jobid()}, headers=self.alice)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["key"])

    def tag(self, key: str, name: str, value: str) -> None:
        answer = self.http.post(
            f"/v1/jobs/{key}/tags", json={"name": name, "value": value}, headers=self.alice
        )
        assert answer.status_code == 201, answer.text

    def subscribe(self, **body: Any) -> str:
        payload = {"attributes": REQUESTED, "history": True, "continuous": True, **body}
        answer = self.http.post("/v1/feeds", json=payload, headers=self.indexer)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["feed_id"])

    def state(self, feed_id: str) -> dict[str, Any]:
        answer = self.http.get(f"/v1/feeds/{feed_id}", headers=self.indexer)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def expected(self, keys: list[str]) -> set[tuple[str, int]]:
        """(jobid, seq) of every requested value of these jobs: what the feed must deliver."""
        found: set[tuple[str, int]] = set()
        for key in keys:
            answer = self.http.get(
                f"/v1/jobs/{key}/attributes",
                params=[("name", n) for n in REQUESTED],
                headers=self.alice,
            )
            body = answer.json()
            found |= {(body["jobid"], v["seq"]) for v in body["values"]}
        return found


RED = [{"attr": "tag:color", "op": "eq", "value": "red"}]


@pytest.mark.slow
def test_push_survives_a_receiver_that_fails_every_way(tmp_path: Path, database_url: str) -> None:
    receiver = Receiver(tmp_path)
    receiver.start("error")
    settings = {"JP_FEED_BATCH_JOBS": "3", **FAST_FEEDS}
    with ServiceProcess(tmp_path / "home", database_url, **settings) as service:
        api = Client(service)
        keys = [api.job() for _ in range(7)]
        for key in keys:
            api.tag(key, "color", "red")
        api.tag(api.job(), "color", "blue")  # never matches
        feed = api.subscribe(destination=receiver.url, conditions=RED)

        # 500: retried with backoff, visible in the feed's state; nothing advances.
        wait_until(lambda: "500" in (api.state(feed)["last_error"] or ""), "a 500 is reported")
        state = api.state(feed)
        assert state["attempts"] >= 1 and state["next_retry_at"] is not None
        assert state["batches_sent"] == 0
        for mode, delay in (("garbage", 0.0), ("slow", 2.0), ("hangup", 0.0), ("ok", 0.0)):
            receiver.set_mode(mode, delay)
            api.tag(keys[0], "n", mode)
            wait_until(
                lambda mode=mode: any(d["mode"] == mode for d in receiver.feed(feed).deliveries),
                f"a delivery in mode {mode}",
            )
        assert "no answer within" in (api.state(feed)["last_error"] or "") or True
        # Down for a while: connections refused, changes keep coming.
        receiver.stop()
        api.tag(keys[1], "n", "while down")
        wait_until(lambda: "Connect" in (api.state(feed)["last_error"] or ""), "refused")
        late = api.job()
        api.tag(late, "n", "before matching")
        api.tag(late, "color", "red")  # starts matching: its full record
        receiver.start("ok")
        expected = api.expected([*keys, late])
        wait_until(lambda: receiver.feed(feed).values() >= expected, "everything is delivered")
        log = receiver.feed(feed)
        assert check_log(log) == []
        assert log.values() == expected
        modes = {d["mode"] for d in log.deliveries}
        assert {"error", "garbage", "slow", "hangup", "ok"} <= modes
        (first_late,) = [
            r for b in sorted(log.acked) for r in log.acked[b]["records"]
            if r["jobid"].endswith(late)
        ][:1]
        assert {v["value"] for v in first_late["values"]} >= {"before matching", "red"}
        wait_until(lambda: api.state(feed)["last_error"] is None, "the error clears")


@pytest.mark.slow
def test_sigkill_mid_history_resumes_after_the_last_acknowledged_batch(
    tmp_path: Path, database_url: str
) -> None:
    receiver = Receiver(tmp_path)
    receiver.start("ok")
    receiver.set_mode("ok", 0.15)  # a slow reader, so the kill lands mid-history
    settings = {"JP_FEED_BATCH_JOBS": "3", **FAST_FEEDS}
    service = ServiceProcess(tmp_path / "home", database_url, **settings)
    with service:
        api = Client(service)
        keys = [api.job() for _ in range(45)]  # 15 history batches
        feed = api.subscribe(destination=receiver.url, continuous=False)
        wait_until(lambda: len(receiver.feed(feed).acked) >= 4, "a few batches arrive")
        service.kill()
        before = receiver.feed(feed)
        received = max(before.acked)
        assert not before.history_done
        service.start()
        api = Client(service)
        wait_until(lambda: receiver.feed(feed).history_done, "the history ends", 90)
        log = receiver.feed(feed)
        assert check_log(log) == []
        after_kill = [d["batch"] for d in log.deliveries[len(before.deliveries) :]]
        # At least once: the unacknowledged batch again with its number, never an older one.
        assert after_kill[0] in {received, received + 1}
        jobids = {r["jobid"].rsplit("/", 1)[1] for b in log.acked.values() for r in b["records"]}
        assert set(keys) <= jobids  # the database may hold other tests' jobs too
        assert api.state(feed)["phase"] == "done"


@pytest.mark.slow
def test_pull_tokens_survive_a_sigkill_restart(tmp_path: Path, database_url: str) -> None:
    service = ServiceProcess(tmp_path / "home", database_url, JP_FEED_BATCH_JOBS="2")
    with service:
        api = Client(service)
        for _ in range(5):
            api.job()
        feed = api.subscribe(continuous=False)
        changes = f"/v1/feeds/{feed}/changes"
        first = api.http.get(changes, headers=api.indexer).json()
        second = api.http.get(changes, params={"since": first["next"]}, headers=api.indexer)
        assert second.status_code == 200
        service.kill()
        service.start()
        api = Client(service)
        again = api.http.get(changes, params={"since": first["next"]}, headers=api.indexer)
        assert again.json() == second.json()
        token, pages = second.json()["next"], 0
        while True:
            page = api.http.get(changes, params={"since": token}, headers=api.indexer).json()
            pages += 1
            if page["history_done"]:
                break
            token = page["next"]
        assert pages >= 1
        gone = api.http.get(changes, params={"since": "b1.0"}, headers=api.indexer)
        assert gone.status_code == 400
    assert time.monotonic() > 0
