"""The maildir: durable delivery, atomic claims, retry state in the name, reasons."""

from __future__ import annotations

import time
from pathlib import Path

from jp_primary.client.maildir import Maildir, RetryState, split_state


def test_deliver_claim_done(tmp_path: Path) -> None:
    box = Maildir(tmp_path / "md")
    path = box.deliver(b"hello")
    assert path.parent == box.dir("new")
    assert path.read_bytes() == b"hello"
    assert list(box.dir("tmp").iterdir()) == []
    work = box.claim(path)
    assert work is not None
    assert work.parent == box.dir("work")
    assert box.claim(path) is None  # a second claim loses
    box.done(work)
    assert box.counts() == {"new": 0, "work": 0, "post": 0, "undeliverable": 0}


def test_postponed_message_waits_for_its_time(tmp_path: Path) -> None:
    box = Maildir(tmp_path / "md")
    work = box.claim(box.deliver(b"x"))
    assert work is not None
    now = time.time()
    posted = box.postpone(work, RetryState(1, now, now + 60))
    assert list(box.pending(now)) == []
    assert list(box.pending(now + 61)) == [posted]
    base, state = split_state(posted.name)
    assert state is not None
    assert state.attempts == 1
    assert base == work.name
    again = box.claim(posted)
    assert again is not None
    posted2 = box.postpone(again, RetryState(2, state.first_failure, now + 1))
    assert split_state(posted2.name) == (base, RetryState(2, round(now), round(now + 1, 3)))


def test_reject_writes_the_reason_beside(tmp_path: Path) -> None:
    box = Maildir(tmp_path / "md")
    work = box.claim(box.deliver(b"x"))
    assert work is not None
    target = box.reject(work, "not a jobid: 'x'")
    assert target.read_bytes() == b"x"
    assert (target.parent / f"{target.name}.reason").read_text() == "not a jobid: 'x'\n"
    assert box.counts()["undeliverable"] == 1


def test_recover_puts_back_what_a_dead_consumer_held(tmp_path: Path) -> None:
    box = Maildir(tmp_path / "md")
    fresh = box.claim(box.deliver(b"a"))
    retried = box.claim(box.deliver(b"b"))
    assert fresh is not None
    assert retried is not None
    posted = box.postpone(retried, RetryState(1, 1.0, 2.0))
    box.claim(posted)
    assert box.recover() == 2
    assert [p.name for p in box.dir("new").iterdir()] == [fresh.name]
    assert [p.name for p in box.dir("post").iterdir()] == [posted.name]
