"""A maildir spool: durable hand-over of messages between a producer and one consumer.

Producers write ``tmp/<name>``, fsync it, rename it into ``new/`` and fsync ``new/``: once
``deliver()`` returns, the message survives a crash of the producer or of the machine. The
consumer claims a message by renaming it into ``work/`` (atomic: two claims cannot both win),
removes it when done, moves it to ``post/`` to retry later (the retry state is in the name, so a
rename is the whole state change) or to ``undeliverable/`` beside a ``<name>.reason`` file.
Files a message refers to (sandbox tarballs) live in ``files/``.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SUBDIRS = ("tmp", "new", "work", "post", "undeliverable", "files")
# post/<base>,A<attempts>,F<first failure>,N<next try> (epoch seconds)
_STATE = re.compile(r"^(?P<base>.+?),A(?P<a>\d+),F(?P<f>\d+(?:\.\d+)?),N(?P<n>\d+(?:\.\d+)?)$")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unique_name() -> str:
    """``<sec>.<usec>_<pid>_<random>.<host>``: sorts by time, unique across processes."""
    now = time.time()
    host = socket.gethostname().replace("/", "_").replace(":", "_").replace(",", "_")
    return f"{int(now)}.{int(now % 1 * 1e6):06d}_{os.getpid()}_{secrets.token_hex(4)}.{host}"


def write_durably(path: Path, data: bytes) -> None:
    with path.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


@dataclass(frozen=True)
class RetryState:
    attempts: int
    first_failure: float
    next_try: float


def split_state(name: str) -> tuple[str, RetryState | None]:
    m = _STATE.match(name)
    if m is None:
        return name, None
    return m["base"], RetryState(int(m["a"]), float(m["f"]), float(m["n"]))


class Maildir:
    def __init__(self, root: str | Path, *, create: bool = True) -> None:
        self.root = Path(root)
        if create:
            for sub in SUBDIRS:
                (self.root / sub).mkdir(parents=True, exist_ok=True)

    def dir(self, sub: str) -> Path:
        return self.root / sub

    # -- producing ----------------------------------------------------------------------------

    def deliver(self, body: bytes, name: str | None = None, *, sync: bool = True) -> Path:
        """Store a message in ``new/`` and return its path there: durably, or with
        ``sync=False`` for a batch the caller makes durable at once (``os.sync()``)."""
        name = name or unique_name()
        tmp = self.dir("tmp") / name
        if sync:
            write_durably(tmp, body)
        else:
            tmp.write_bytes(body)
        target = self.dir("new") / name
        os.rename(tmp, target)
        if sync:
            fsync_dir(self.dir("new"))
        return target

    # -- consuming ----------------------------------------------------------------------------

    def recover(self) -> int:
        """Put back what a consumer that died left in ``work/`` (call with the lock held)."""
        count = 0
        for path in sorted(self.dir("work").iterdir()):
            _base, state = split_state(path.name)
            os.rename(path, self.dir("post" if state else "new") / path.name)
            count += 1
        if count:
            fsync_dir(self.dir("new"))
        return count

    def pending(self, now: float) -> Iterator[Path]:
        """Messages ready to try: all of ``new/`` (oldest first), then those of ``post/`` whose
        retry time has come."""
        yield from sorted(self.dir("new").iterdir())
        for path in sorted(self.dir("post").iterdir()):
            _base, state = split_state(path.name)
            if state is None or state.next_try <= now:
                yield path

    def claim(self, path: Path) -> Path | None:
        target = self.dir("work") / path.name
        try:
            os.rename(path, target)
        except FileNotFoundError:
            return None
        return target

    def done(self, work: Path) -> None:
        work.unlink(missing_ok=True)

    def give_back(self, work: Path) -> None:
        """A clean stop: the claimed message goes back where it came from, untouched."""
        _base, state = split_state(work.name)
        os.rename(work, self.dir("post" if state else "new") / work.name)

    def postpone(self, work: Path, state: RetryState) -> Path:
        base, _old = split_state(work.name)
        target = self.dir("post") / (
            f"{base},A{state.attempts},F{state.first_failure:.0f},N{state.next_try:.3f}"
        )
        os.rename(work, target)
        return target

    def reject(self, work: Path, reason: str) -> Path:
        """Move to ``undeliverable/`` with ``<name>.reason`` saying why."""
        base, _state = split_state(work.name)
        target = self.dir("undeliverable") / base
        tmp = self.dir("tmp") / f"{base}.reason"
        tmp.write_text(reason.rstrip() + "\n", errors="replace")
        os.rename(tmp, self.dir("undeliverable") / f"{base}.reason")
        os.rename(work, target)
        return target

    def counts(self) -> dict[str, int]:
        return {
            sub: sum(1 for p in self.dir(sub).iterdir() if not p.name.endswith(".reason"))
            for sub in ("new", "work", "post", "undeliverable")
        }
