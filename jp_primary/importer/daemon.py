"""The import loop: claim messages from the maildir, deliver them through the REST API, and file
each one as done, to retry (``post/``, with backoff) or undeliverable (with a reason).

Dumps (class ``lb``, plain files up to ``Options.bulk_max_size``) that are waiting together go
in bulk requests (``POST /v1/files/bulk``, up to ``Options.bulk`` each, never two of one job in
one request): a dump stored by it (or found stored with the same bytes) is done; every other
one, and all of a bulk request that failed as a whole (a connection error, a 5xx, a service
without the route), take the one-by-one way (``store_file``), which knows what to do about a
409, a 404 or a name taken by other bytes (docs/importer.md)."""

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
from jp_primary.client.calls import BulkUpload
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
    bulk: int = 32  # dumps in one bulk request at most (below 2: one request per message)
    bulk_max_size: int = 1 << 20  # larger dumps go one by one


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
        # Services that answered a bulk request with 404/405 (older ones): one by one there.
        self._no_bulk: set[str | None] = set()

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
            batches = _Batches(
                self.options.bulk, lambda batch: inflight.add(self._submit(pool, batch))
            )
            while not self.stopping.is_set():
                claimed = 0
                for path in self.box.pending(time.time()):
                    if self.stopping.is_set():
                        break
                    while len(inflight) >= limit:
                        _done, inflight = wait(inflight, return_when=FIRST_COMPLETED)
                    work = self.box.claim(path)
                    if work is None:
                        continue
                    claimed += 1
                    message = self._bulk_candidate(work)
                    if message is None:
                        inflight.add(pool.submit(self._handle, work))
                    else:
                        batches.add(work, message)
                batches.flush()  # what is waiting now goes; nothing waits for more to come
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

    def _submit(
        self, pool: ThreadPoolExecutor, batch: list[tuple[Path, FileMessage]]
    ) -> Future[None]:
        if len(batch) == 1:
            work, message = batch[0]
            return pool.submit(self._handle, work, message)
        return pool.submit(self._handle_bulk, batch)

    def _bulk_candidate(self, work: Path) -> FileMessage | None:
        """The message, when it may go in a bulk request: a dump file of at most
        ``bulk_max_size`` for a service that takes bulk requests."""
        if self.options.bulk < 2:
            return None
        try:
            message = parse(work.read_bytes())
            if not isinstance(message, FileMessage) or message.members:
                return None
            if message.file_class != "lb" or message.jpps in self._no_bulk:
                return None
            size = Path(message.file).stat().st_size
        except (Malformed, OSError):
            return None  # the one-by-one way says why
        return message if size <= self.options.bulk_max_size else None

    # -- a bulk request -----------------------------------------------------------------------

    def _handle_bulk(self, batch: list[tuple[Path, FileMessage]]) -> None:
        if self.stopping.is_set():
            for work, _message in batch:
                self.box.give_back(work)
            return
        # Every job's lock, in one order (no two batches wait for each other); a stripe shared
        # by two jobs is taken once.
        locks = sorted({self._job_lock_index(m.jobid) for _, m in batch})
        for index in locks:
            self._job_locks[index].acquire()
        try:
            stored = self._send_bulk(batch)
            for (work, message), result in zip(batch, stored, strict=True):
                if result is None:
                    self._handle(work, message, locked=True)
                    continue
                self.box.done(work)
                self.counts.add(delivered=1, registered=int(result[0]), already=int(result[1]))
                self._remove_delivered(message)
        finally:
            for index in reversed(locks):
                self._job_locks[index].release()

    def _send_bulk(self, batch: list[tuple[Path, FileMessage]]) -> list[tuple[bool, bool] | None]:
        """One bulk request: per message (registered, already stored) when it is stored, None
        when it takes the one-by-one way."""
        outcome: list[tuple[bool, bool] | None] = [None] * len(batch)
        items, places = [], []
        for place, (_work, message) in enumerate(batch):
            path = Path(message.file)
            try:
                body = path.read_bytes()
            except OSError:
                continue  # the one-by-one way says why
            owner = regjob_owner(path)
            items.append(
                BulkUpload(message.jobid, "lb", body, name=message.name, register=True, owner=owner)
            )
            places.append(place)
        if not items:
            return outcome
        jpps = batch[0][1].jpps
        try:
            results = self.client_for(jpps).put_files_bulk(items, brief=True)
        except errors.APIError as exc:
            if exc.status in (404, 405):
                self._no_bulk.add(jpps)
                self.say(f"{self.client_for(jpps).url} takes no bulk requests: one by one there")
            return outcome
        except Exception:  # every message takes the one-by-one way, which reports the problem
            return outcome
        if len(results) != len(items):
            return outcome  # not an answer to this request: one by one
        for place, result in zip(places, results, strict=True):
            if result.stored:
                outcome[place] = (bool(result.registered), result.status == 200)
        return outcome

    # -- one message --------------------------------------------------------------------------

    def _handle(
        self, work: Path, message: Registration | FileMessage | None = None, locked: bool = False
    ) -> None:
        """Deliver one message (``locked``: its job's lock is held already) and file it."""
        if self.stopping.is_set():
            self.box.give_back(work)
            return
        try:
            if message is None:
                message = parse(work.read_bytes())
            if locked:
                self._deliver_one(message)
            else:
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

    def _job_lock_index(self, jobid: str) -> int:
        return hash(jobid) % len(self._job_locks)

    def _job_lock(self, jobid: str) -> threading.Lock:
        return self._job_locks[self._job_lock_index(jobid)]

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


class _Batches:
    """Dump messages waiting for a bulk request, one batch per service (``jpps``); a batch goes
    (``send``) when full, when a second message of one of its jobs comes (that one starts the
    next batch), and at ``flush``."""

    def __init__(self, size: int, send: Callable[[list[tuple[Path, FileMessage]]], object]):
        self.size = size
        self.send = send
        self.waiting: dict[str | None, list[tuple[Path, FileMessage]]] = {}

    def add(self, work: Path, message: FileMessage) -> None:
        batch = self.waiting.setdefault(message.jpps, [])
        if any(m.jobid == message.jobid for _, m in batch):
            self.send(batch)
            batch = self.waiting[message.jpps] = []
        batch.append((work, message))
        if len(batch) >= self.size:
            self.send(self.waiting.pop(message.jpps))

    def flush(self) -> None:
        for batch in self.waiting.values():
            if batch:
                self.send(batch)
        self.waiting.clear()
