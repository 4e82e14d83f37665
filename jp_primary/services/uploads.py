"""The two-phase upload (start, bytes, commit, abort), the one-shot PUT, and expiry (the commit
itself and the answers for ended uploads: ``services/upload_commit.py``).

Bytes first, then the database: a crash between them leaves at most an unreferenced object
(removed by ``jp-primary gc``), never a file row claiming bytes the store does not have.

Retries (docs/uploads.md): a new upload start or one-shot PUT by the identity that started an
unfinished upload of the same ``(job, class, name)`` (or by a trusted service) supersedes it: the
old upload ends as ``superseded``, its staging bytes are removed and a writer still sending them
gets 410. A direct upload whose bytes fail the size/sha256 check ends as ``failed`` (its
credentials are used up: a new upload gets fresh ones). While bytes arrive through the API the
writer keeps the upload open (a heartbeat moves the deadline), so expiry never removes what is
being written.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial

import anyio.to_thread
from sqlmodel import Session

from jp_primary.auth.identity import Identity, Role
from jp_primary.backends.base import DirectUpload, StorageBackend, StoredObject
from jp_primary.db.repositories import files, identities, uploads
from jp_primary.db.repositories.jobs import JobInfo
from jp_primary.db.repositories.uploads import Upload, UploadState
from jp_primary.db.session import Database
from jp_primary.door.grants import Door, door_upload
from jp_primary.errors import (
    Conflict,
    DigestMismatch,
    Gone,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
)
from jp_primary.plugins.registry import PluginRegistry
from jp_primary.services import jobs, resumable
from jp_primary.services.storage_keys import (
    staging_key,
    validate_file_name,
)
from jp_primary.services.upload_commit import (
    CommitGroups,
    CommitSteps,
    CommittedFile,
    UploadLimits,
)
from jp_primary.text import check_media_type, shown

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class UploadRequest:
    file_class: str
    name: str = ""
    content_type: str | None = None
    size: int | None = None
    sha256: str | None = None
    direct: bool = False


@dataclass(frozen=True)
class UploadTicket:
    upload_id: str
    method: str  # "api" (PUT to the service) or a backend's direct method
    expires_at: datetime
    direct: DirectUpload | None = None


@dataclass(frozen=True)
class UploadProgress:
    upload: Upload
    received: int  # bytes stored, contiguous from byte 0
    complete: bool  # all bytes are in: the upload can be committed


def normalise_sha256(value: str | None) -> str | None:
    if value is None:
        return None
    lowered = value.strip().lower()
    if not _SHA256.fullmatch(lowered):
        raise InvalidInput("sha256 must be 64 hexadecimal characters")
    return lowered


class AlreadyStored(Conflict):
    """409 at an upload's start: a file is stored under its (job, class, name) (the bulk route
    compares the bytes with it)."""

    def __init__(self, detail: str, job: JobInfo) -> None:
        super().__init__(detail)
        self.job = job

    @property
    def error(self) -> str:
        return "Conflict"


class Registration:
    """The fail-safe registration a one-shot PUT may ask for: when its job is unknown, register
    ``jobid`` for ``owner`` (default: the caller) and go on; a job registered meanwhile (for
    whoever) is left to the upload's own checks. Done inside the upload start's transaction, so a
    fresh job costs no transaction of its own."""

    def __init__(self, registrar: jobs.Registrar, jobid: str, owner: str | None) -> None:
        self.registrar = registrar
        self.jobid = jobid
        self.owner = owner
        self.created = False

    def register_in(
        self, session: Session, identity: Identity, key: str, sink: jobs.ValueSink
    ) -> jobs.Registration | None:
        """Register the job in the caller's transaction (values left in ``sink``); None when a
        registration for someone else came first."""
        if jobs.job_key(self.jobid) != key:
            raise InvalidInput(
                f"X-Register-Jobid {shown(self.jobid)} is not the job of this path (key {key!r})"
            )
        owner = jobs.owner_for(identity, self.owner)
        # In one order for every transaction (see ``jobs.record_subjects``).
        jobs.record_subjects(session, [identity.subject, owner])
        with contextlib.suppress(Conflict):
            return jobs.register_in(
                session, identity, self.jobid, owner, sink, self.registrar.retention
            )
        return None


@dataclass(frozen=True)
class Prepared:
    """An upload start checked and given its id, before its transaction."""

    req: UploadRequest
    upload_id: str
    file_class: str
    name: str
    content_type: str | None
    sha256: str | None
    method: str
    now: datetime
    expires: datetime
    direct: DirectUpload | None


@dataclass(frozen=True)
class Reserved:
    """What an upload start's transaction did: the uploads it ended (their staging to drop),
    the upload and its job as recorded, and the registration of the job on the way, if any."""

    ended: list[str]
    upload: Upload
    job: JobInfo
    registered: jobs.Registration | None = None


class UploadService(CommitSteps):
    def __init__(
        self,
        db: Database,
        backend: StorageBackend,
        plugins: PluginRegistry,
        limits: UploadLimits,
        door: Door | None = None,
    ) -> None:
        self.db = db
        self.backend = backend
        self.plugins = plugins
        self.limits = limits
        self.door = door
        self._commits = CommitGroups(db)

    async def close(self) -> None:
        await self._commits.close()

    # -- start ---------------------------------------------------------------------------------

    async def start(self, identity: Identity, key: str, req: UploadRequest) -> UploadTicket:
        ticket, _upload, _job = await self._reserve(identity, key, req)
        return ticket

    async def _reserve(
        self,
        identity: Identity,
        key: str,
        req: UploadRequest,
        registration: Registration | None = None,
    ) -> tuple[UploadTicket, Upload, JobInfo]:
        """Start an upload (registering its unknown job first when ``registration`` says how):
        its ticket, and the upload and job as recorded."""
        prepared = self.prepare_start(req)

        def reserve(session: Session) -> Reserved:
            sink = jobs.ValueSink()
            reserved = self.reserve_in(session, identity, key, prepared, registration, sink)
            sink.flush(session)
            return reserved

        reserved = await self.db.run(reserve)
        if registration is not None and reserved.registered is not None:
            registration.created = reserved.registered.created
            await registration.registrar.secure(reserved.registered.quarantined)
        return await self.after_reserve(prepared, reserved), reserved.upload, reserved.job

    def prepare_start(self, req: UploadRequest) -> Prepared:
        """Check an upload start's request and give it an id (no database work)."""
        file_class = self.plugins.resolve_class(req.file_class)
        name = validate_file_name(req.name)
        content_type = check_media_type(req.content_type)
        sha256 = normalise_sha256(req.sha256)
        if req.size is not None and req.size > self.limits.max_file_size:
            raise PayloadTooLarge(f"declared size exceeds the limit of {self.limits.max_file_size}")
        upload_id = secrets.token_urlsafe(18)
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=self.limits.deadline_seconds)
        direct = self._store_upload(upload_id, req, sha256, expires) if req.direct else None
        # A door grant refers to the upload row, so it is issued once the row exists.
        method = direct.method if direct else ("ftp" if req.direct else "api")
        return Prepared(
            req, upload_id, file_class, name, content_type, sha256, method, now, expires, direct
        )

    def reserve_in(
        self,
        session: Session,
        identity: Identity,
        key: str,
        prepared: Prepared,
        registration: Registration | None,
        sink: jobs.ValueSink,
    ) -> Reserved:
        """An upload start inside the caller's transaction (the job's values, when it is
        registered on the way, left in ``sink``). Refusals (404, 403, 409) raise before the
        upload row is written."""
        try:
            return self._reserve_slot(session, identity, key, prepared)
        except NotFound:
            if registration is None:
                raise
        registered = registration.register_in(session, identity, key, sink)
        reserved = self._reserve_slot(session, identity, key, prepared)
        return replace(reserved, registered=registered)

    def _reserve_slot(
        self, session: Session, identity: Identity, key: str, prepared: Prepared
    ) -> Reserved:
        job = jobs.writable_job(session, identity, key)
        ended = self._expire_in(session, job.id)
        starter_id = identities.identity_id(session, identity.subject)
        file_class, name = prepared.file_class, prepared.name
        row = Upload(
            id=prepared.upload_id,
            job_id=job.id,
            file_class=file_class,
            name=name,
            content_type=prepared.content_type,
            declared_size=prepared.req.size,
            declared_sha256=prepared.sha256,
            method=prepared.method,
            state=UploadState.OPEN,
            slot=uploads.slot(job.id, file_class, name),
            starter_id=starter_id,
            created_at=prepared.now,
            expires_at=prepared.expires,
            staging_key=staging_key(prepared.upload_id, "direct") if prepared.req.direct else None,
        )
        if files.exists(session, job.id, file_class, name):
            raise AlreadyStored(
                f"file ({file_class}, {name!r}) is already stored for this job; files are "
                "write-once: read it with GET, or store the new bytes under another name",
                job,
            )
        assert row.slot is not None
        # The slot is free but for a retry: try it first, and look for its holder (to
        # supersede) only when it is taken.
        if not uploads.insert(session, row):
            ended += self._supersede(session, identity, starter_id, row.slot)
            if not uploads.insert(session, row):
                raise Conflict(
                    f"another upload of ({file_class}, {name!r}) started at the same moment; "
                    "start the upload again (it supersedes yours if it was yours)"
                )
        return Reserved(ended, row, job)

    async def after_reserve(self, prepared: Prepared, reserved: Reserved) -> UploadTicket:
        """After an upload start's transaction: drop what it superseded, issue a door grant."""
        for ended_id in reserved.ended:
            await self._drop_staging(ended_id)
        upload_id, direct = prepared.upload_id, prepared.direct
        if prepared.method == "ftp" and self.door is not None:
            target = staging_key(upload_id, "direct")
            grants, url = self.door.grants, self.door.public_url
            direct = await anyio.to_thread.run_sync(
                door_upload, grants, url, upload_id, target, prepared.expires
            )
        return UploadTicket(upload_id, prepared.method, prepared.expires, direct)

    def _supersede(
        self, session: Session, identity: Identity, starter_id: int, slot: str
    ) -> list[str]:
        """End the unfinished upload holding ``slot`` when the caller may take it over: its
        starter (a retry after a crash or a stall) or a trusted service. Another identity's upload
        is left alone: 409, with when it ends."""
        holder = uploads.holding(session, slot)
        if holder is None:
            return []
        if holder.starter_id != starter_id and not identity.has(Role.TRUSTED):
            raise Conflict(
                f"an upload of ({holder.file_class}, {holder.name!r}) by another identity is in "
                f"progress until {holder.expires_at.isoformat()}; wait for it to be committed or "
                "to expire, then start again, or use another name"
            )
        return [holder.id] if uploads.end(session, holder.id, UploadState.SUPERSEDED) else []

    def _store_upload(
        self, upload_id: str, req: UploadRequest, sha256: str | None, expires: datetime
    ) -> DirectUpload | None:
        """A presigned upload straight into the store; None when the FTP door takes the bytes."""
        if req.size is None:
            raise InvalidInput("a direct upload needs the declared size (the store enforces it)")
        key = staging_key(upload_id, "direct")
        direct = self.backend.direct_upload(key, size=req.size, sha256=sha256, expires=expires)
        if direct is None and self.door is None:
            raise InvalidInput(f"the {self.backend.name} backend offers no direct uploads")
        return direct

    # -- bytes ---------------------------------------------------------------------------------

    async def receive(
        self,
        identity: Identity,
        upload_id: str,
        chunks: AsyncIterator[bytes],
        content_range: str | None = None,
    ) -> None:
        """Take the bytes of an upload: all of them, or with ``content_range`` one range of a
        resumable send (services/resumable.py), the last range joining them."""
        upload = await self.db.run(lambda s: self._open_upload(s, identity, upload_id))
        if upload.method != "api":
            raise Conflict(
                f"this upload's bytes go to the storage directly (method {upload.method}), not "
                "through the API: send them to the URL its start returned, or start a new upload"
            )
        byte_range = None if content_range is None else resumable.parse_content_range(content_range)
        await self._stage(upload, chunks, byte_range)

    async def _stage(
        self,
        upload: Upload,
        chunks: AsyncIterator[bytes],
        byte_range: resumable.ByteRange | None = None,
    ) -> Upload:
        """Write the bytes of an upload in progress to a new staging key and record them (with
        ``byte_range``, keep one range of a resumable send, the last one joining them); the
        upload as it is now (410 when it ended meanwhile)."""
        upload_id = upload.id
        if byte_range is None:
            key, stored = await self.write_staging(upload, chunks)
        else:
            key = staging_key(upload_id, secrets.token_hex(8))
            limit = self.limits.max_file_size
            try:
                have = await resumable.store_range(
                    self.backend,
                    upload_id,
                    byte_range,
                    self._keeping_open(upload_id, chunks),
                    max_size=limit,
                )
                if have < byte_range.total:
                    return upload  # more ranges to come
                stored = await resumable.join(self.backend, upload_id, key, max_size=limit)
            except (Gone, PayloadTooLarge, Conflict, InvalidInput):
                raise
            except Exception:
                await self.raise_if_ended(upload_id, key)
                raise
        commit_until = self.commit_deadline()
        accepted = await self.db.run(
            lambda s: uploads.record_received(
                s, upload_id, key, stored.size, stored.sha256, commit_until
            )
        )
        if not accepted:
            await self.raise_if_ended(upload_id, key)
        return await self.as_received(upload, key, stored)

    async def write_staging(
        self, upload: Upload, chunks: AsyncIterator[bytes]
    ) -> tuple[str, StoredObject]:
        """Write all the bytes of an upload in progress to a new staging key (not recorded yet:
        ``uploads.record_received`` does that)."""
        key = staging_key(upload.id, secrets.token_hex(8))
        try:
            stored = await self.backend.put_stream(
                key, self._keeping_open(upload.id, chunks), max_size=self.limits.max_file_size
            )
        except (Gone, PayloadTooLarge, Conflict, InvalidInput):
            raise
        except Exception:
            # A write that failed because the upload ended under it (superseded, aborted or
            # expired while stalled, its staging removed) is that ending, not a server error.
            await self.raise_if_ended(upload.id, key)
            raise
        return key, stored

    def commit_deadline(self) -> datetime:
        """The deadline of an upload whose bytes are in: a full deadline to commit them."""
        return datetime.now(UTC) + timedelta(seconds=self.limits.deadline_seconds)

    async def as_received(self, upload: Upload, key: str, stored: StoredObject) -> Upload:
        """The upload once its bytes at ``key`` are recorded (an earlier attempt's dropped)."""
        if upload.staging_key and upload.staging_key != key:
            await self.backend.delete(upload.staging_key)  # an earlier attempt's bytes
        return replace(
            upload,
            state=UploadState.RECEIVED,
            staging_key=key,
            received_size=stored.size,
            received_sha256=stored.sha256,
        )

    async def progress(self, identity: Identity, upload_id: str) -> UploadProgress:
        """How far the bytes of an upload in progress have come (where a resumable send goes on)."""
        upload = await self.db.run(lambda s: self._open_upload(s, identity, upload_id))
        if upload.received_size is not None:
            return UploadProgress(upload, upload.received_size, complete=True)
        if upload.method != "api":
            return UploadProgress(upload, 0, complete=False)
        have = resumable.received(await resumable.pieces(self.backend, upload_id))
        return UploadProgress(upload, have, complete=False)

    async def _keeping_open(
        self, upload_id: str, chunks: AsyncIterator[bytes]
    ) -> AsyncIterator[bytes]:
        """Pass the chunks on; every quarter of a deadline (at most a minute) move the upload's
        deadline to a full deadline from now, so expiry leaves an upload whose bytes still arrive
        alone; stop with 410 as soon as the upload has ended (superseded, aborted, expired)."""
        interval = min(60.0, self.limits.deadline_seconds / 4)
        last = time.monotonic()
        async for chunk in chunks:
            if time.monotonic() - last >= interval:
                last = time.monotonic()
                until = datetime.now(UTC) + timedelta(seconds=self.limits.deadline_seconds)
                if not await self.db.run(
                    partial(uploads.keep_open, upload_id=upload_id, until=until)
                ):
                    await self.raise_if_ended(upload_id)
            yield chunk

    # -- abort, one-shot, expiry ---------------------------------------------------------------

    async def abort(self, identity: Identity, upload_id: str) -> None:
        upload = await self.db.run(lambda s: self._open_upload(s, identity, upload_id))
        if await self.db.run(lambda s: uploads.end(s, upload_id, UploadState.ABORTED)):
            await self._drop_staging(upload.id)

    async def put_file(
        self,
        identity: Identity,
        key: str,
        req: UploadRequest,
        chunks: AsyncIterator[bytes],
        registration: Registration | None = None,
    ) -> CommittedFile:
        """Start, send and commit in one go (fire and forget senders). The upload and its job
        are known from its start, so the checks a separate send and commit repeat are skipped.
        An unknown job is registered first when ``registration`` says how."""
        ticket, upload, job = await self._reserve(identity, key, req, registration)
        return await self.settled(
            ticket.upload_id, self._send_and_commit(identity, upload, job, chunks)
        )

    async def _send_and_commit(
        self, identity: Identity, upload: Upload, job: JobInfo, chunks: AsyncIterator[bytes]
    ) -> CommittedFile:
        received = await self._stage(upload, chunks)
        return await self.finish(identity, received, job)

    async def settled(self, upload_id: str, work: Awaitable[CommittedFile]) -> CommittedFile:
        """The outcome of the rest of a one-shot upload: on any failure the upload is abandoned
        (its bytes dropped), so a retry of the same request starts clean."""
        try:
            return await work
        except DigestMismatch as exc:
            with anyio.CancelScope(shield=True):
                await self.abandon(upload_id)
            found = exc.detail.split("; nothing was stored", 1)[0]
            raise DigestMismatch(
                f"{found}; nothing was stored: send the file again with the same PUT"
            ) from None
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.abandon(upload_id)
            raise

    async def abandon(self, upload_id: str) -> None:
        if await self.db.run(lambda s: uploads.end(s, upload_id, UploadState.ABORTED)):
            await self._drop_staging(upload_id)

    def _expire_in(self, session: Session, job_id: int | None = None) -> list[str]:
        now = datetime.now(UTC)
        due = uploads.expired_ids(session, now, job_id)
        return [upload_id for upload_id in due if uploads.expire(session, upload_id, now)]

    async def expire_due(self) -> int:
        """End every upload past its deadline and remove its bytes; return how many."""
        ended = await self.db.run(lambda s: self._expire_in(s))
        for upload_id in ended:
            await self._drop_staging(upload_id)
        return len(ended)
