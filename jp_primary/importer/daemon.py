"""The import loop: claim messages from the maildir, deliver them through the REST API, and file
each one as done, to retry (``post/``, with backoff) or undeliverable (with a reason)."""

from __future__ import annotations

import fcntl
import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from jp_primary.client import errors
from jp_primary.client.maildir import Maildir, RetryState, split_state
from jp_primary.client.messages import FileMessage, Malformed, Registration, parse
from jp_primary.client.spool import build_tarball, member_path
from jp_primary.client.store import store_file
from jp_primary.client.sync import Client
from jp_primary.importer.lbowner import regjob_owner

# Answers no retry can change: the message goes to undeliverable/ at once.
PERMANENT = (errors.BadRequest, errors.InvalidInput, errors.PayloadTooLarge)


class Undeliverable(Exception):
    """A message that cannot be delivered, whatever the retries."""


@dataclass(frozen=True)
class Options:
    retry_first: float = 5.0  # seconds before the first retry
    retry_max: float = 300.0  # the longest wait between retries
    give_up: float = 3600.0  # after this long since the first failure: undeliverable
    workers: int = 8
    poll: float = 1.0  # seconds between looks at an idle maildir
    keep_files: bool = False  # leave delivered dump files in place (spool tarballs always go)
    once: bool = False
    report_every: float = 10.0


@dataclass
class Counts:
    delivered: int = 0
    registered: int = 0
    already: int = 0
    postponed: int = 0
    undeliverable: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **kw: int) -> None:
        with self.lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)

    def line(self) -> str:
        return (
            f"delivered {self.delivered} (registered {self.registered}, already stored "
            f"{self.already}), postponed {self.postponed}, undeliverable {self.undeliverable}"
        )


class Importer:
    def __init__(
        self,
        maildir: Maildir,
        client_for: Callable[[str | None], Client],
        options: Options | None = None,
        log: IO[str] | None = None,
    ) -> None:
        self.box = maildir
        self.client_for = client_for
        self.options = options or Options()
        self.log = log or sys.stderr
        self.counts = Counts()
        self.stopping = threading.Event()
        # Messages of one job are delivered one at a time: two uploads of the same (class,
        # name) by one sender would supersede each other (410) instead of being compared.
        # (Striped: a fixed set of locks, so the bookkeeping never grows.)
        self._job_locks = [threading.Lock() for _ in range(1024)]

    def say(self, text: str) -> None:
        print(f"jp-primary import: {text}", file=self.log, flush=True)

    # -- the loop -----------------------------------------------------------------------------

    def stop(self, *_args: Any) -> None:
        self.stopping.set()

    def run(self, install_signals: bool = True) -> int:
        lock = self._lock()
        try:
            if install_signals:
                signal.signal(signal.SIGTERM, self.stop)
                signal.signal(signal.SIGINT, self.stop)
            back = self.box.recover()
            if back:
                self.say(f"{back} messages a previous run left in work/ are queued again")
            self._loop()
            self.say(f"stopped: {self.counts.line()}; left {self.box.counts()}")
            return 0
        finally:
            lock.close()

    def _lock(self) -> IO[bytes]:
        handle = (self.box.root / ".importer.lock").open("ab")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise SystemExit(f"another importer holds {self.box.root}/.importer.lock") from None
        return handle

    def _loop(self) -> None:
        limit = self.options.workers * 4
        inflight: set[Future[None]] = set()
        last_report = time.monotonic()
        with ThreadPoolExecutor(self.options.workers, thread_name_prefix="import") as pool:
            while not self.stopping.is_set():
                claimed = 0
                for path in self.box.pending(time.time()):
                    if self.stopping.is_set():
                        break
                    while len(inflight) >= limit:
                        _done, inflight = wait(inflight, return_when=FIRST_COMPLETED)
                    work = self.box.claim(path)
                    if work is not None:
                        inflight.add(pool.submit(self._handle, work))
                        claimed += 1
                if time.monotonic() - last_report >= self.options.report_every:
                    self.say(self.counts.line())
                    last_report = time.monotonic()
                if claimed == 0:
                    if inflight:
                        _done, inflight = wait(inflight, timeout=self.options.poll)
                    elif self.options.once:
                        break
                    else:
                        self.stopping.wait(self.options.poll)
            wait(inflight)

    # -- one message --------------------------------------------------------------------------

    def _handle(self, work: Path) -> None:
        if self.stopping.is_set():
            self.box.give_back(work)
            return
        try:
            message = parse(work.read_bytes())
            self._deliver(message)
        except (Malformed, Undeliverable) as exc:
            self._reject(work, str(exc))
        except PERMANENT as exc:
            self._reject(work, f"the service refused it: {exc}")
        except Exception as exc:
            self._postpone(work, exc)
        else:
            self.box.done(work)
            self.counts.add(delivered=1)
            if isinstance(message, FileMessage):
                self._remove_delivered(message)

    def _job_lock(self, jobid: str) -> threading.Lock:
        return self._job_locks[hash(jobid) % len(self._job_locks)]

    def _deliver(self, message: Registration | FileMessage) -> None:
        with self._job_lock(message.jobid):
            self._deliver_one(message)

    def _deliver_one(self, message: Registration | FileMessage) -> None:
        client = self.client_for(getattr(message, "jpps", None))
        if isinstance(message, Registration):
            try:
                client.register(message.jobid, message.owner)
            except errors.Conflict as exc:
                raise Undeliverable(f"registered for another owner: {exc.detail}") from exc
            self.counts.add(registered=1)
            return
        path = Path(message.file)
        if message.members:
            self._deliver_sandbox(client, message)
            return
        if not path.is_file():
            raise Undeliverable(f"the file {path} does not exist")
        owner = (lambda: regjob_owner(path)) if message.file_class == "lb" else None
        stored = store_file(
            client, message.jobid, message.file_class, path, name=message.name, register_owner=owner
        )
        self.counts.add(registered=int(stored.registered), already=int(not stored.created))

    def _deliver_sandbox(self, client: Client, message: FileMessage) -> None:
        """A sandbox spooled by ``upload_files``: tarred now, stored, the tarball dropped."""
        prefix = Path(message.file)
        kept = [member_path(prefix, i) for i in range(len(message.members))]
        missing = [str(p) for p in kept if not p.is_file()]
        if missing:
            raise Undeliverable(f"the spooled files {', '.join(missing)} are missing")
        tarball = self.box.dir("tmp") / f"{prefix.name}.{threading.get_ident()}.tar"
        try:
            build_tarball(prefix, message.members, tarball)
            # The job may be registered later (a registration message racing this one): a
            # NotFound is retried with backoff, not answered by registering for ourselves.
            stored = store_file(
                client, message.jobid, message.file_class, tarball, name=message.name
            )
        finally:
            tarball.unlink(missing_ok=True)
        self.counts.add(already=int(not stored.created))

    def _remove_delivered(self, message: FileMessage) -> None:
        path = Path(message.file)
        spool_owned = path.parent.resolve() == self.box.dir("files").resolve()
        if message.members:
            paths = [member_path(path, i) for i in range(len(message.members))]
        else:
            paths = [path]
        if spool_owned or not self.options.keep_files:
            for item in paths:
                try:
                    item.unlink(missing_ok=True)
                except OSError as exc:
                    self.say(f"cannot remove the delivered file {item}: {exc}")

    def _reject(self, work: Path, reason: str) -> None:
        self.box.reject(work, reason)
        self.counts.add(undeliverable=1)
        self.say(f"undeliverable {work.name}: {reason}")

    def _postpone(self, work: Path, exc: Exception) -> None:
        now = time.time()
        _base, state = split_state(work.name)
        first = state.first_failure if state else now
        attempts = (state.attempts if state else 0) + 1
        reason = f"{type(exc).__name__}: {exc}"
        if now - first >= self.options.give_up:
            self._reject(work, f"gave up after {attempts} attempts since {first:.0f}: {reason}")
            return
        delay = min(self.options.retry_max, self.options.retry_first * 2 ** (attempts - 1))
        delay *= random.uniform(0.9, 1.1)  # noqa: S311 - spreads retries, no security role
        self.box.postpone(work, RetryState(attempts, first, now + delay))
        self.counts.add(postponed=1)
        self.say(f"retry {work.name} in {delay:.0f}s (attempt {attempts}): {reason}")
