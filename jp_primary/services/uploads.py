"""The two-phase upload (start, bytes, commit, abort), the one-shot PUT, and expiry.

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

import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial

import anyio.to_thread
from sqlmodel import Session

from jp_primary.auth.identity import Identity, Role
from jp_primary.backends.base import DirectUpload, StorageBackend
from jp_primary.db.repositories import files, identities, uploads
from jp_primary.db.repositories.files import NewFile
from jp_primary.db.repositories.jobs import JobInfo
from jp_primary.db.repositories.uploads import Upload, UploadState
from jp_primary.db.session import Database
from jp_primary.door.grants import Door, door_upload
from jp_primary.errors import (
    Conflict,
    DigestMismatch,
    Forbidden,
    Gone,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
)
from jp_primary.plugins.registry import PluginRegistry
from jp_primary.services import jobs
from jp_primary.services.extraction import (
    ExtractionLimits,
    FileIdentity,
    error_count,
    error_dicts,
    extract_sync,
)
from jp_primary.services.received import inspect_direct
from jp_primary.services.storage_keys import (
    final_key,
    staging_key,
    staging_prefix,
    validate_file_name,
)
from jp_primary.services.tags import reserved_namespaces, screen_file_tags
from jp_primary.services.upload_commit import (
    CommitGroups,
    CommittedFile,
    PendingCommit,
    after,
    as_committed,
)
from jp_primary.text import check_media_type

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class UploadLimits:
    max_file_size: int
    deadline_seconds: int
    extraction: ExtractionLimits = ExtractionLimits()


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


def normalise_sha256(value: str | None) -> str | None:
    if value is None:
        return None
    lowered = value.strip().lower()
    if not _SHA256.fullmatch(lowered):
        raise InvalidInput("sha256 must be 64 hexadecimal characters")
    return lowered


class UploadService:
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
        self, identity: Identity, key: str, req: UploadRequest
    ) -> tuple[UploadTicket, Upload, JobInfo]:
        """Start an upload: its ticket, and the upload and job as recorded."""
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

        def reserve(session: Session) -> tuple[list[str], Upload, JobInfo]:
            job = jobs.writable_job(session, identity, key)
            ended = self._expire_in(session, job.id)
            starter_id = identities.identity_id(session, identity.subject)
            row = Upload(
                id=upload_id,
                job_id=job.id,
                file_class=file_class,
                name=name,
                content_type=content_type,
                declared_size=req.size,
                declared_sha256=sha256,
                method=method,
                state=UploadState.OPEN,
                slot=uploads.slot(job.id, file_class, name),
                starter_id=starter_id,
                created_at=now,
                expires_at=expires,
                staging_key=staging_key(upload_id, "direct") if req.direct else None,
            )
            if files.get(session, job.id, file_class, name) is not None:
                raise Conflict(
                    f"file ({file_class}, {name!r}) is already stored for this job; files are "
                    "write-once: read it with GET, or store the new bytes under another name"
                )
            assert row.slot is not None
            ended += self._supersede(session, identity, starter_id, row.slot)
            if not uploads.insert(session, row):
                raise Conflict(
                    f"another upload of ({file_class}, {name!r}) started at the same moment; "
                    "start the upload again (it supersedes yours if it was yours)"
                )
            return ended, row, job

        ended, upload, job = await self.db.run(reserve)
        for ended_id in ended:
            await self._drop_staging(ended_id)
        if method == "ftp" and self.door is not None:
            target = staging_key(upload_id, "direct")
            grants, url = self.door.grants, self.door.public_url
            direct = await anyio.to_thread.run_sync(
                door_upload, grants, url, upload_id, target, expires
            )
        return UploadTicket(upload_id, method, expires, direct), upload, job

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
        self, identity: Identity, upload_id: str, chunks: AsyncIterator[bytes]
    ) -> None:
        upload = await self.db.run(lambda s: self._open_upload(s, identity, upload_id))
        if upload.method != "api":
            raise Conflict(
                f"this upload's bytes go to the storage directly (method {upload.method}), not "
                "through the API: send them to the URL its start returned, or start a new upload"
            )
        await self._stage(upload, chunks)

    async def _stage(self, upload: Upload, chunks: AsyncIterator[bytes]) -> Upload:
        """Write the bytes of an upload in progress to a new staging key and record them; the
        upload as it is now (410 when it ended meanwhile)."""
        upload_id = upload.id
        key = staging_key(upload_id, secrets.token_hex(8))
        try:
            stored = await self.backend.put_stream(
                key, self._keeping_open(upload_id, chunks), max_size=self.limits.max_file_size
            )
        except (Gone, PayloadTooLarge):
            raise
        except Exception:
            # A write that failed because the upload ended under it (superseded, aborted or
            # expired while stalled, its staging removed) is that ending, not a server error.
            await self._raise_if_ended(upload_id, key)
            raise
        commit_until = datetime.now(UTC) + timedelta(seconds=self.limits.deadline_seconds)
        accepted = await self.db.run(
            lambda s: uploads.record_received(
                s, upload_id, key, stored.size, stored.sha256, commit_until
            )
        )
        if not accepted:
            await self._raise_if_ended(upload_id, key)
        if upload.staging_key and upload.staging_key != key:
            await self.backend.delete(upload.staging_key)  # an earlier attempt's bytes
        return replace(
            upload,
            state=UploadState.RECEIVED,
            staging_key=key,
            received_size=stored.size,
            received_sha256=stored.sha256,
        )

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
                    await self._raise_if_ended(upload_id)
            yield chunk

    async def _raise_if_ended(
        self,
        upload_id: str,
        written: str | None = None,
        during: str = "while its bytes were arriving",
    ) -> None:
        """410 (after removing ``written``) when the upload is no longer in progress."""
        row = await self.db.run(lambda s: uploads.get(s, upload_id))
        if row is not None and row.state in uploads.IN_PROGRESS:
            return
        if written is not None:
            await self.backend.delete(written)
        state = row.state if row is not None else UploadState.ABORTED
        raise Gone(f"the upload was {state} {during}; {after(state)}")

    def _open_upload(self, session: Session, identity: Identity, upload_id: str) -> Upload:
        upload = uploads.get(session, upload_id)
        if upload is None:
            raise NotFound("no such upload")
        if identities.identity_id(session, identity.subject) != upload.starter_id:
            raise Forbidden("only the identity that started an upload may send or commit it")
        if upload.state == UploadState.COMMITTED:
            raise Conflict(
                "the upload is already committed: its file is stored (GET it); nothing to send"
            )
        if upload.state not in uploads.IN_PROGRESS:
            raise Gone(f"the upload was {upload.state}; {after(upload.state)}")
        if upload.expires_at <= datetime.now(UTC):
            raise Gone(f"the upload's deadline has passed; {after(UploadState.EXPIRED)}")
        return upload

    # -- commit --------------------------------------------------------------------------------

    async def commit(self, identity: Identity, upload_id: str) -> CommittedFile:
        try:
            upload = await self.db.run(lambda s: self._open_upload(s, identity, upload_id))
        except Conflict:
            return await self._already_committed(upload_id)
        job = await self.db.run(lambda s: jobs.job_by_id(s, upload.job_id))
        return await self._finish(identity, upload, job)

    async def _finish(self, identity: Identity, upload: Upload, job: JobInfo) -> CommittedFile:
        """Commit an upload found open (and its job): verify, publish, extract, record."""
        upload_id = upload.id
        try:
            size, sha256 = await self._received(upload)
            await self._verify(upload, size, sha256)
            assert upload.staging_key is not None
            location = await self._publish(
                upload.staging_key, final_key(job.key, upload.file_class, upload.name)
            )
        except (Conflict, FileNotFoundError):
            # The staged bytes vanish when the upload ends under this commit (superseded by a
            # retry, expired) or a concurrent commit won: that is the answer, not "no bytes" or
            # a server error.
            ended = await self.db.run(lambda s: uploads.get(s, upload_id))
            if ended is not None and ended.state == UploadState.COMMITTED:
                return await self._already_committed(upload_id)
            await self._raise_if_ended(upload.id, during="while it was being committed")
            raise
        now = datetime.now(UTC)
        file_id = FileIdentity(job.jobid, job.key, upload.file_class, upload.name)
        extraction = await anyio.to_thread.run_sync(
            extract_sync, self.plugins, self.backend, location, file_id, now, self.limits.extraction
        )
        extraction.user_tags, refused = screen_file_tags(
            extraction.user_tags, reserved_namespaces(self.plugins)
        )
        extraction.errors.extend(refused)
        row = NewFile(
            job_id=upload.job_id,
            file_class=upload.file_class,
            name=upload.name,
            size=size,
            sha256=sha256,
            content_type=upload.content_type,
            uploader_id=upload.starter_id,
            upload_id=upload.id,
            committed_at=now,
            location=location,
            errors=error_dicts(extraction),
            error_count=error_count(extraction),
        )
        committed = await self._commits.record(
            PendingCommit(upload, row, extraction, identity.subject, job.key)
        )
        if self.backend.renames_cheaply and hasattr(self.backend, "remove_directory"):
            # The bytes moved out of staging; what is left there is an earlier attempt's
            # leftovers (a write cut by a crash): remove them with the upload's staging dir.
            # Local directories only: a listing per commit would cost a round trip elsewhere.
            await self._drop_staging(upload.id)
        return committed

    async def _publish(self, staged: str, final: str) -> str:
        """Where the committed bytes live. Published before extraction, so a commit retried after
        a crash finds them there (publish is idempotent) and derives the same values. Object
        stores would copy every byte to rename: there the bytes stay at their staging key."""
        if not self.backend.renames_cheaply:
            return staged
        await self.backend.publish(staged, final)
        return final

    async def _received(self, upload: Upload) -> tuple[int, str]:
        if upload.received_size is not None and upload.received_sha256 is not None:
            return upload.received_size, upload.received_sha256
        if upload.method == "api" or upload.staging_key is None:
            raise Conflict(
                f"no bytes were received for this upload: send them with PUT "
                f"/v1/uploads/{upload.id} and commit again, or abort it (DELETE /v1/uploads/"
                f"{upload.id})"
            )
        received = await inspect_direct(self.backend, upload.staging_key)
        return received.size, received.sha256

    async def _verify(self, upload: Upload, size: int, sha256: str) -> None:
        problems = []
        if upload.declared_size is not None and upload.declared_size != size:
            problems.append(f"declared size {upload.declared_size}, received {size}")
        if upload.declared_sha256 is not None and upload.declared_sha256 != sha256:
            problems.append(f"declared sha256 {upload.declared_sha256}, received {sha256}")
        if not problems:
            return
        found = "; ".join(problems)
        if upload.method == "api":
            # The upload stays open: the same starter may send the bytes again.
            if upload.staging_key:
                await self.backend.delete(upload.staging_key)
            await self.db.run(lambda s: uploads.clear_received(s, upload.id))
            raise DigestMismatch(
                f"{found}; nothing was stored: send the bytes again with PUT /v1/uploads/"
                f"{upload.id} and commit, or abort the upload (DELETE /v1/uploads/{upload.id})"
            )
        # Direct uploads: the credentials are used up, so the upload ends and frees the name.
        if await self.db.run(lambda s: uploads.end(s, upload.id, UploadState.FAILED)):
            await self._drop_staging(upload.id)
        raise DigestMismatch(
            f"{found}; nothing was stored and this upload has ended: start a new upload "
            "(POST /v1/jobs/{key}/uploads) for fresh credentials and send the bytes again"
        )

    async def _already_committed(self, upload_id: str) -> CommittedFile:
        def lookup(session: Session) -> CommittedFile:
            row = files.by_upload(session, upload_id)
            if row is None:
                raise Conflict(
                    "the upload is already committed: its file is stored (GET it); nothing to send"
                )
            return as_committed(session, row, jobs.job_by_id(session, row.job_id).key)

        return await self.db.run(lookup)

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
    ) -> CommittedFile:
        """Start, send and commit in one go (fire and forget senders). The upload and its job
        are known from its start, so the checks a separate send and commit repeat are skipped."""
        ticket, upload, job = await self._reserve(identity, key, req)
        try:
            received = await self._stage(upload, chunks)
            return await self._finish(identity, received, job)
        except DigestMismatch as exc:
            with anyio.CancelScope(shield=True):
                await self._abandon(ticket.upload_id)
            found = exc.detail.split("; nothing was stored", 1)[0]
            raise DigestMismatch(
                f"{found}; nothing was stored: send the file again with the same PUT"
            ) from None
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._abandon(ticket.upload_id)
            raise

    async def _abandon(self, upload_id: str) -> None:
        if await self.db.run(lambda s: uploads.end(s, upload_id, UploadState.ABORTED)):
            await self._drop_staging(upload_id)

    async def _drop_staging(self, upload_id: str) -> None:
        """Remove an ended upload's staging objects (a writer's temporary file included)."""
        prefix = staging_prefix(upload_id)
        keys = [obj.key async for obj in self.backend.list(prefix)]
        for key in keys:
            await self.backend.delete(key)
        # Stores with directories (filesystem) also drop the emptied staging/<upload>/ itself.
        remove_directory = getattr(self.backend, "remove_directory", None)
        if remove_directory is not None:
            await remove_directory(prefix)

    def _expire_in(self, session: Session, job_id: int | None = None) -> list[str]:
        now = datetime.now(UTC)
        return [
            upload.id
            for upload in uploads.expired(session, now, job_id)
            if uploads.expire(session, upload.id, now)
        ]

    async def expire_due(self) -> int:
        """End every upload past its deadline and remove its bytes; return how many."""
        ended = await self.db.run(lambda s: self._expire_in(s))
        for upload_id in ended:
            await self._drop_staging(upload_id)
        return len(ended)
