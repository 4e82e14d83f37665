"""Push feeds between real processes: ``jp-primary serve`` delivering to a receiver process that
fails in every way an index server does, and a SIGKILL in the middle of a history run; pull
tokens across a SIGKILL restart."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from jp_primary.testing.receiver import check_log
from tests.crash.server import ServiceProcess
from tests.feed.procs import FAST_FEEDS, Client, Receiver, wait_until

RED = [{"attr": "tag:color", "op": "eq", "value": "red"}]


@pytest.mark.slow
def test_push_survives_a_receiver_that_fails_every_way(
    tmp_path: Path, database_url: str, receiver: Receiver
) -> None:
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
        assert state["attempts"] >= 1
        assert state["next_retry_at"] is not None
        assert state["batches_sent"] == 0
        # 200 with garbage acknowledges; too late, or a connection closed mid-answer, does not.
        faults = (
            ("garbage", 0.0, None),
            ("slow", 2.0, "no answer within"),
            ("hangup", 0.0, "RemoteProtocolError"),
        )
        for mode, delay, error in (*faults, ("ok", 0.0, None)):
            receiver.set_mode(mode, delay)
            api.tag(keys[0], "n", mode)
            wait_until(
                lambda mode=mode: any(d["mode"] == mode for d in receiver.feed(feed).deliveries),
                f"a delivery in mode {mode}",
            )
            if error is not None:
                wait_until(
                    lambda error=error: error in (api.state(feed)["last_error"] or "-"),
                    f"the failure in mode {mode} is reported",
                )
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
            r
            for b in sorted(log.acked)
            for r in log.acked[b]["records"]
            if r["jobid"].endswith(late)
        ][:1]
        assert {v["value"] for v in first_late["values"]} >= {"before matching", "red"}
        wait_until(lambda: api.state(feed)["last_error"] is None, "the error clears")


@pytest.mark.slow
def test_sigkill_mid_history_resumes_after_the_last_acknowledged_batch(
    tmp_path: Path, database_url: str, receiver: Receiver
) -> None:
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
