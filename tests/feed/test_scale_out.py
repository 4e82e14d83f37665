"""Two ``jp-primary serve`` processes and one ``jp-primary feed-worker`` on one PostgreSQL
delivering push feeds, one of them SIGKILLed mid-delivery: every change still arrives, never two
batches of one feed in flight at once, and the dead process's feeds are taken over within the
lease."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import httpx
import pytest

from jp_primary.testing.receiver import check_log
from tests.crash.server import ServiceProcess
from tests.feed.procs import FAST_FEEDS, Client, FeedWorker, Receiver, wait_until

LEASE = float(FAST_FEEDS["JP_FEED_LEASE_SECONDS"])


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_killed_process_loses_its_feeds_to_the_others(
    tmp_path: Path, database_url: str, receiver: Receiver
) -> None:
    receiver.start("ok")
    receiver.set_mode("ok", 0.05)
    settings = {"JP_FEED_BATCH_JOBS": "4", **FAST_FEEDS}
    first = ServiceProcess(tmp_path / "a", database_url, **settings)
    second = ServiceProcess(tmp_path / "b", database_url, **settings)
    worker = FeedWorker(tmp_path / "w", database_url, **settings)
    with first, second:
        worker.start()
        try:
            apis = [Client(first), Client(second)]
            keys = [apis[0].job() for _ in range(20)]
            feeds = [apis[i % 2].subscribe(destination=receiver.url) for i in range(4)]
            stop = threading.Event()
            written: list[str] = []

            def write() -> None:
                for n in itertools.count():
                    if stop.is_set():
                        return
                    key = keys[n % len(keys)]
                    try:
                        apis[0].tag(key, "n", str(n))
                    except httpx.TransportError:
                        continue  # the process it wrote to was just killed: not acknowledged
                    written.append(key)
                    time.sleep(0.02)

            writer = threading.Thread(target=write)
            writer.start()
            try:
                wait_until(
                    lambda: all(receiver.feed(f).history_done for f in feeds), "histories end"
                )
                holders = {f: apis[1].state(f)["worker"] for f in feeds}
                # The process holding the most feeds dies: a serve process or, when it took
                # them all, the feed worker.
                serving = {s: s.proc.pid for s in (first, second)}  # type: ignore[union-attr]
                pids: dict[object, int] = {**serving, worker: worker.pid}
                victim = max(
                    pids, key=lambda p: sum(f":{pids[p]}:" in (h or "") for h in holders.values())
                )
                victim_pid = pids[victim]
                orphaned = [f for f, h in holders.items() if f":{victim_pid}:" in (h or "")]
                assert orphaned, f"no feed held by any of the three processes: {holders}"
                victim.kill()
                killed_at = time.time()
                survivor = apis[0] if victim is second else apis[1]
                if victim is first:
                    apis[0] = apis[1]
                wait_until(
                    lambda: all(
                        f":{victim_pid}:" not in (survivor.state(f)["worker"] or "")
                        for f in orphaned
                    ),
                    "the orphaned feeds are taken over",
                    LEASE * 5,
                )
                time.sleep(1.0)
            finally:
                stop.set()
                writer.join()
            expected = survivor.expected(keys)
            for feed in feeds:
                wait_until(
                    lambda feed=feed: receiver.feed(feed).values() >= expected,
                    f"feed {feed} has every change",
                )
            for feed in feeds:
                log = receiver.feed(feed)
                assert check_log(log) == [], feed
                assert log.values() >= expected
            for feed in orphaned:
                resumed = [d["at"] for d in receiver.feed(feed).deliveries if d["at"] > killed_at]
                assert resumed, feed
                assert resumed[0] - killed_at < LEASE + 2.0, (feed, resumed[0] - killed_at)
            holders_after = {survivor.state(f)["worker"] for f in feeds}
            assert all(h and f":{victim_pid}:" not in h for h in holders_after)
        finally:
            worker.kill()
