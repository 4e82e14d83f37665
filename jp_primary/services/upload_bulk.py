"""Many small one-shot uploads in one request (``POST /v1/files/bulk``, docs/uploads.md).

Each item is what a one-shot PUT with the same headers would be, and answers what that PUT would
answer, with one difference: the same bytes already stored under the name answer 200 with the
stored file (the idempotent-by-content rule senders apply after a 409), so a retried request
answers 200 for what an earlier attempt committed. The steps are the PUT's own, taken for all
items at once where the PUT takes them one by one: every item's start (and the registration of
its unknown job) in one transaction, the bytes' records in one transaction, the commits in one
group (``CommitGroups``). One item's refusal never fails the others; a failed transaction is
split by ``isolating`` down to the item that broke it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import anyio
from sqlmodel import Session

from jp_primary.auth.identity import Identity
from jp_primary.backends.base import StoredObject
from jp_primary.db.repositories import files, uploads
from jp_primary.db.repositories.uploads import Upload
from jp_primary.errors import (
    Conflict,
    Forbidden,
    Gone,
    InternalError,
    InvalidInput,
    JPError,
    NotFound,
)
from jp_primary.services import jobs
from jp_primary.services.batching import database_item_caused, isolating
from jp_primary.services.upload_commit import CommittedFile, as_committed
from jp_primary.services.uploads import (
    AlreadyStored,
    Prepared,
    Registration,
    Reserved,
    UploadRequest,
    UploadService,
)

log = logging.getLogger(__name__)

# A fresh iterator over an item's bytes at every call (they are read twice when compared).
Content = Callable[[], AsyncIterator[bytes]]


@dataclass(frozen=True)
class BulkFile:
    """One item: the one-shot PUT of ``content`` as ``(class, name)`` of ``jobid``; with
    ``register``, an unknown job is registered first for ``register_owner`` (default: caller)."""

    jobid: str
    file_class: str
    content: Content
    name: str = ""
    sha256: str | None = None
    content_type: str | None = None
    register: bool = False
    register_owner: str | None = None


@dataclass(frozen=True)
class BulkOutcome:
    """An item's outcome: the file stored (``stored_now`` by this request, else the same bytes
    were there already), or the error its PUT would have answered."""

    file: CommittedFile | None = None
    stored_now: bool = False
    error: JPError | None = None
    registered: bool = False


class _Unavailable(Exception):
    """The database is away: the whole request fails with that error, as a single PUT would;
    raised after the per-item tasks ended (a task group would wrap it in an exception group)."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _failed(exc: Exception) -> BulkOutcome:
    if isinstance(exc, JPError):
        return BulkOutcome(error=exc)
    if not database_item_caused(exc):
        raise _Unavailable(exc)
    log.error("bulk upload item failed", exc_info=exc)
    detail = "this file could not be stored (the others were); report it to the operators"
    return BulkOutcome(error=InternalError(detail))


# What a start may refuse an item with, having written nothing the others mind.
_REFUSALS = (Conflict, NotFound, Forbidden, InvalidInput, Gone)


@dataclass
class _Item:
    index: int
    key: str
    prepared: Prepared
    content: Content
    registration: Registration | None
    reserved: Reserved | None = None
    upload: Upload | None = None
    staged: tuple[str, StoredObject] | None = None

    @property
    def order(self) -> tuple[str, str, str]:
        return (self.key, self.prepared.file_class, self.prepared.name)


class BulkPut:
    """One bulk request's items through the one-shot PUT's steps (``UploadService``'s)."""

    def __init__(self, service: UploadService, registrar: jobs.Registrar) -> None:
        self.service = service
        self.registrar = registrar
        self._unavailable: _Unavailable | None = None

    async def run(self, identity: Identity, files_in: list[BulkFile]) -> list[BulkOutcome]:
        outcomes: dict[int, BulkOutcome] = {}
        items = self._prepare(identity, files_in, outcomes)
        try:
            reserved, taken = await self._reserve(identity, items, outcomes)
            await self._compare_stored(taken, outcomes)
            await self._stage(reserved, outcomes)
            await self._finish(identity, reserved, outcomes)
        except _Unavailable as exc:
            await self._abandon_unfinished(items, outcomes)
            raise exc.cause from None
        except BaseException:
            await self._abandon_unfinished(items, outcomes)
            raise
        return [outcomes[i] for i in range(len(files_in))]

    async def _abandon_unfinished(
        self, items: list[_Item], outcomes: dict[int, BulkOutcome]
    ) -> None:
        """A request that fails as a whole leaves no upload of it open (a retry starts clean)."""
        with anyio.CancelScope(shield=True):
            for item in items:
                if item.reserved is not None and item.index not in outcomes:
                    with contextlib.suppress(Exception):  # the database may be away
                        await self.service.abandon(item.reserved.upload.id)

    # -- the steps ----------------------------------------------------------------------------

    def _prepare(
        self, identity: Identity, files_in: list[BulkFile], outcomes: dict[int, BulkOutcome]
    ) -> list[_Item]:
        items: list[_Item] = []
        seen: dict[tuple[str, str, str], int] = {}
        for index, bulk in enumerate(files_in):
            try:
                key = jobs.job_key(bulk.jobid)
                request = UploadRequest(
                    bulk.file_class, bulk.name, bulk.content_type, sha256=bulk.sha256
                )
                prepared = self.service.prepare_start(request)
                registration = None
                if bulk.register:
                    owner = jobs.owner_for(identity, bulk.register_owner)
                    registration = Registration(self.registrar, bulk.jobid, owner)
                item = _Item(index, key, prepared, bulk.content, registration)
                earlier = seen.setdefault(item.order, index)
                if earlier != index:
                    raise InvalidInput(
                        f"item {earlier} of this request is the same file (job, class, name); "
                        "send each file once"
                    )
            except JPError as exc:
                outcomes[index] = BulkOutcome(error=exc)
                continue
            items.append(item)
        # One order for every transaction: two requests naming the same jobs never wait for
        # each other's rows in opposite orders (a deadlock).
        return sorted(items, key=lambda item: item.order)

    async def _reserve(
        self, identity: Identity, items: list[_Item], outcomes: dict[int, BulkOutcome]
    ) -> tuple[list[_Item], list[tuple[_Item, AlreadyStored]]]:
        """Every item's start in one transaction (split only when one item breaks it): the
        items started, and those whose name holds a file already."""

        async def run(part: list[_Item]) -> list[Reserved | Exception]:
            return await self.service.db.run(lambda s: self._reserve_in(s, identity, part))

        results = await isolating(run, items, database_item_caused)
        reserved, taken = [], []
        for item, result in zip(items, results, strict=True):
            if isinstance(result, Exception):
                outcomes[item.index] = _failed(result)
                if isinstance(result, AlreadyStored):
                    taken.append((item, result))
                continue
            item.reserved = result
            if item.registration is not None and result.registered is not None:
                item.registration.created = result.registered.created
                await self.registrar.secure(result.registered.quarantined)
            await self.service.after_reserve(item.prepared, result)
            reserved.append(item)
        return reserved, taken

    def _reserve_in(
        self, session: Session, identity: Identity, part: list[_Item]
    ) -> list[Reserved | Exception]:
        sink = jobs.ValueSink()
        owners = [item.registration.owner for item in part if item.registration is not None]
        jobs.record_subjects(session, [identity.subject, *(o for o in owners if o is not None)])
        results: list[Reserved | Exception] = []
        for item in part:
            try:
                results.append(
                    self.service.reserve_in(
                        session, identity, item.key, item.prepared, item.registration, sink
                    )
                )
            except _REFUSALS as exc:
                results.append(exc)
        sink.flush(session)
        return results

    async def _compare_stored(
        self, taken: list[tuple[_Item, AlreadyStored]], outcomes: dict[int, BulkOutcome]
    ) -> None:
        """Items whose name holds a file already: 200 with that file when it has the item's
        bytes (409 stays otherwise)."""
        if not taken:
            return
        digests = {item.index: await _digest(item.content()) for item, _ in taken}

        def lookup(session: Session) -> dict[int, CommittedFile]:
            same = {}
            for item, refusal in taken:
                job = refusal.job
                row = files.get(session, job.id, item.prepared.file_class, item.prepared.name)
                if row is not None and row.sha256 == digests[item.index]:
                    same[item.index] = as_committed(session, row, job.key)
            return same

        for index, stored in (await self.service.db.run(lookup)).items():
            outcomes[index] = BulkOutcome(stored)

    async def _stage(self, items: list[_Item], outcomes: dict[int, BulkOutcome]) -> None:
        """Write every item's bytes (at once), then record them all in one transaction."""

        async def write(item: _Item) -> None:
            assert item.reserved is not None
            try:
                item.staged = await self.service.write_staging(item.reserved.upload, item.content())
            except Exception as exc:
                await self._give_up(item, exc, outcomes)

        async with anyio.create_task_group() as group:
            for item in items:
                group.start_soon(write, item)
        self._raise_if_unavailable()
        written = [item for item in items if item.staged is not None]
        until = self.service.commit_deadline()

        def record(session: Session) -> list[bool]:
            accepted = []
            for item in written:
                assert item.reserved is not None
                assert item.staged is not None
                key, stored = item.staged
                upload_id = item.reserved.upload.id
                accepted.append(
                    uploads.record_received(
                        session, upload_id, key, stored.size, stored.sha256, until
                    )
                )
            return accepted

        for item, accepted in zip(written, await self.service.db.run(record), strict=True):
            assert item.reserved is not None
            assert item.staged is not None
            key, stored = item.staged
            try:
                if not accepted:
                    await self.service.raise_if_ended(item.reserved.upload.id, key)
                item.upload = await self.service.as_received(item.reserved.upload, key, stored)
            except Exception as exc:
                await self._give_up(item, exc, outcomes)
        self._raise_if_unavailable()

    async def _finish(
        self, identity: Identity, items: list[_Item], outcomes: dict[int, BulkOutcome]
    ) -> None:
        """Commit every staged item (at once: their database steps share commit groups)."""

        async def commit_one(item: _Item) -> None:
            assert item.reserved is not None
            assert item.upload is not None
            work = self.service.finish(identity, item.upload, item.reserved.job)
            try:
                committed = await self.service.settled(item.upload.id, work)
            except Exception as exc:
                self._record_failure(item, exc, outcomes)
                return
            registered = item.registration is not None and item.registration.created
            outcomes[item.index] = BulkOutcome(committed, stored_now=True, registered=registered)

        async with anyio.create_task_group() as group:
            for item in items:
                if item.upload is not None:
                    group.start_soon(commit_one, item)
        self._raise_if_unavailable()

    # -- failures -----------------------------------------------------------------------------

    async def _give_up(self, item: _Item, exc: Exception, outcomes: dict[int, BulkOutcome]) -> None:
        """An item that failed before its commit: its upload ends, its outcome is the error."""
        assert item.reserved is not None
        with contextlib.suppress(Exception):  # the database may be away: then it expires
            await self.service.abandon(item.reserved.upload.id)
        self._record_failure(item, exc, outcomes)

    def _record_failure(
        self, item: _Item, exc: Exception, outcomes: dict[int, BulkOutcome]
    ) -> None:
        # Never raises inside a task group (which would wrap the error in an exception group).
        try:
            outcomes[item.index] = _failed(exc)
        except _Unavailable as unavailable:
            self._unavailable = unavailable

    def _raise_if_unavailable(self) -> None:
        if self._unavailable is not None:
            raise self._unavailable


async def _digest(chunks: AsyncIterator[bytes]) -> str:
    digest = hashlib.sha256()
    async for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()
