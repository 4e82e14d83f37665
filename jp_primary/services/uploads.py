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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

import anyio.to_thread
from sqlmodel import Session

from jp_primary.attributes.names import tag_attribute
from jp_primary.auth.identity import Identity, Role
from jp_primary.backends.base import DirectUpload, StorageBackend
from jp_primary.db.repositories import files, identities, uploads, values
from jp_primary.db.repositories.files import NewFile, StoredFile
from jp_primary.db.repositories.uploads import Upload, UploadState
from jp_primary.db.repositories.values import StoredValue
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
from jp_primary.plugins.base import Extraction
from jp_primary.plugins.registry import PluginRegistry
from jp_primary.services import jobs, resumable
from jp_primary.services.extraction import (
    ExtractionLimits,
    FileIdentity,
    error_count,
    error_dicts,
    extract_sync,
    file_values,
    store_job_record,
)
from jp_primary.services.received import inspect_direct
from jp_primary.services.storage_keys import (
    final_key,
    staging_key,
    staging_prefix,
    validate_file_name,
)
from jp_primary.services.tags import reserved_namespaces, screen_file_tags
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


@dataclass(frozen=True)
class UploadProgress:
    upload: Upload
    received: int  # bytes stored, contiguous from byte 0
    complete: bool  # all bytes are in: the upload can be committed


@dataclass(frozen=True)
class CommittedFile:
    file: StoredFile
    job_key: str
    uploader: str
    values: list[StoredValue] = field(default_factory=list)
    errors: list[dict[str, object]] = field(default_factory=list)
    created: bool = True

    @property
    def error_count(self) -> int:
        """Every extraction problem found (``errors`` holds the first ones)."""
        return self.file.error_count


# What a client can do about an upload that ended, by how it ended.
_START = "start a new upload (POST /v1/jobs/{key}/uploads)"
_AFTER = {
    UploadState.ABORTED: f"{_START} to send the file",
    UploadState.EXPIRED: f"{_START} and send the bytes again",
    UploadState.SUPERSEDED: "a newer upload of the same (class, name) replaced it: use that one",
    UploadState.FAILED: f"{_START} for fresh credentials",
    UploadState.COMMITTED: "its file is stored (GET it); nothing to send",
}


def _after(state: str) -> str:
    """What the client can do about an upload that ended in ``state``."""
    return _AFTER[UploadState(state)]


def normalise_sha256(value: str | None) -> str | None:
    if value is None:
        return None
    lowered = value.strip().lower()
    if not _SHA256.fullmatch(lowered):
        raise InvalidInput("sha256 must be 64 hexadecimal characters")
    return lowered


def _as_committed(session: Session, row: StoredFile, job_key: str) -> CommittedFile:
    """The answer to a commit that an earlier (possibly unanswered) attempt completed."""
    uploader = identities.subjects(session, {row.uploader_id})[row.uploader_id]
    derived = values.for_file(session, row.id)
    return CommittedFile(row, job_key, uploader, derived, list(row.errors), created=False)


def _record_file_tags(
    session: Session, upload: Upload, tags: list[tuple[str, str]], at: datetime
) -> None:
    """User tags a file carries (namespaced L&B UserTags), recorded as if its uploader had
    tagged the job at commit time."""
    tagged = [
        values.NewValue(tag_attribute(name), value, "USER", at, author_id=upload.starter_id)
        for name, value in tags
    ]
    values.append(session, upload.job_id, tagged)


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

    # -- start ---------------------------------------------------------------------------------

    async def start(self, identity: Identity, key: str, req: UploadRequest) -> UploadTicket:
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

        def reserve(session: Session) -> list[str]:
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
            return ended

        for ended_id in await self.db.run(reserve):
            await self._drop_staging(ended_id)
        if method == "ftp" and self.door is not None:
            target = staging_key(upload_id, "direct")
            grants, url = self.door.grants, self.door.public_url
            direct = await anyio.to_thread.run_sync(
                door_upload, grants, url, upload_id, target, expires
            )
        return UploadTicket(upload_id, method, expires, direct)

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
        key = staging_key(upload_id, secrets.token_hex(8))
        limit = self.limits.max_file_size
        try:
            if content_range is None:
                stored = await self.backend.put_stream(
                    key, self._keeping_open(upload_id, chunks), max_size=limit
                )
            else:
                byte_range = resumable.parse_content_range(content_range)
                have = await resumable.store_range(
                    self.backend,
                    upload_id,
                    byte_range,
                    self._keeping_open(upload_id, chunks),
                    max_size=limit,
                )
                if have < byte_range.total:
                    return  # more ranges to come
                stored = await resumable.join(self.backend, upload_id, key, max_size=limit)
        except (Gone, PayloadTooLarge, Conflict, InvalidInput):
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
        raise Gone(f"the upload was {state} {during}; {_after(state)}")

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
            raise Gone(f"the upload was {upload.state}; {_after(upload.state)}")
        if upload.expires_at <= datetime.now(UTC):
            raise Gone(f"the upload's deadline has passed; {_after(UploadState.EXPIRED)}")
        return upload

    # -- commit --------------------------------------------------------------------------------

    async def commit(self, identity: Identity, upload_id: str) -> CommittedFile:
        try:
            upload = await self.db.run(lambda s: self._open_upload(s, identity, upload_id))
        except Conflict:
            return await self._already_committed(upload_id)
        job = await self.db.run(lambda s: jobs.job_by_id(s, upload.job_id))
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
        committed = await self.db.run(
            lambda s: self._record_commit(s, upload, row, extraction, identity, job.key)
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

    def _record_commit(
        self,
        session: Session,
        upload: Upload,
        new_file: NewFile,
        extraction: Extraction,
        identity: Identity,
        job_key: str,
    ) -> CommittedFile:
        if not uploads.end(session, upload.id, UploadState.COMMITTED):
            existing = files.by_upload(session, upload.id)
            if existing is None:
                ended = uploads.get(session, upload.id)
                state = ended.state if ended is not None else UploadState.ABORTED
                raise Gone(f"the upload was {state} before it could be committed; {_after(state)}")
            return _as_committed(session, existing, job_key)
        row = files.insert(session, new_file)
        if row is None:
            raise Conflict(
                f"file ({new_file.file_class}, {new_file.name!r}) is already stored for this job; "
                "files are write-once: read it with GET, or store the new bytes under another name"
            )
        new = file_values(extraction.values, row.file_class, row.name, row.id)
        seqs = values.append(session, upload.job_id, new)
        _record_file_tags(session, upload, extraction.user_tags, row.committed_at)
        store_job_record(session, row, extraction)
        stored = [
            StoredValue(v.name, v.value, v.origin, v.origin_detail, v.timestamp, seq, None)
            for v, seq in zip(new, seqs, strict=True)
        ]
        return CommittedFile(row, job_key, identity.subject, stored, list(row.errors))

    async def _already_committed(self, upload_id: str) -> CommittedFile:
        def lookup(session: Session) -> CommittedFile:
            row = files.by_upload(session, upload_id)
            if row is None:
                raise Conflict(
                    "the upload is already committed: its file is stored (GET it); nothing to send"
                )
            return _as_committed(session, row, jobs.job_by_id(session, row.job_id).key)

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
        """Start, send and commit in one go (fire and forget senders)."""
        ticket = await self.start(identity, key, req)
        try:
            await self.receive(identity, ticket.upload_id, chunks)
            return await self.commit(identity, ticket.upload_id)
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
