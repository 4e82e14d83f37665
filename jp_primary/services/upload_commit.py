"""Finishing uploads: ``CommitSteps``, the half of ``UploadService`` that commits an upload
(verify, publish, extract, record) and answers for uploads that ended, and the database step of
commits, group-committed (``services.batching``).

Every commit that stores values takes the change counter's row lock and holds it until its
transaction ends (db/repositories/values.py: commit order = seq order, which the feed relies on),
so commits are serialised by that lock and each pays its own WAL flush inside it. Commits that
arrive while a group is being written share the next transaction instead: each item's rows are
written first, and the values of the whole group are stored last, with one seq allocation, so the
lock is held only for that insert and the commit. Every answer is still tied to a durable commit
of its own rows; one item that breaks the transaction is isolated by ``isolating`` and never
fails the others.

No savepoints (each costs statements and most of an item's SQLAlchemy overhead): a refused item
(ended meanwhile: 410; its name taken: 409) leaves nothing behind without one. Its file row is
inserted first, unless the name is taken (nothing written then); the conditional update that ends
its upload comes next, and when that finds the upload ended, the file row just inserted is
deleted again before the item hears 410.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import anyio
import anyio.to_thread
from sqlmodel import Session

from jp_primary.attributes.names import tag_attribute
from jp_primary.auth.identity import Identity
from jp_primary.backends.base import StorageBackend
from jp_primary.db.repositories import files, identities, uploads, values
from jp_primary.db.repositories.files import NewFile, StoredFile
from jp_primary.db.repositories.jobs import JobInfo
from jp_primary.db.repositories.uploads import Upload, UploadState
from jp_primary.db.repositories.values import NewValue, StoredValue
from jp_primary.db.session import Database
from jp_primary.errors import Conflict, DigestMismatch, Forbidden, Gone, NotFound
from jp_primary.plugins.base import Extraction
from jp_primary.plugins.registry import PluginRegistry
from jp_primary.services import jobs
from jp_primary.services.batching import Batcher, database_item_caused
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
from jp_primary.services.storage_keys import final_key, staging_prefix
from jp_primary.services.tags import reserved_namespaces, screen_file_tags


@dataclass(frozen=True)
class UploadLimits:
    max_file_size: int
    deadline_seconds: int
    extraction: ExtractionLimits = ExtractionLimits()


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


def after(state: str) -> str:
    """What the client can do about an upload that ended in ``state``."""
    return _AFTER[UploadState(state)]


def as_committed(session: Session, row: StoredFile, job_key: str) -> CommittedFile:
    """The answer to a commit that an earlier (possibly unanswered) attempt completed."""
    uploader = identities.subjects(session, {row.uploader_id})[row.uploader_id]
    derived = values.for_file(session, row.id)
    return CommittedFile(row, job_key, uploader, derived, list(row.errors), created=False)


@dataclass(frozen=True)
class PendingCommit:
    """One commit's database step: its bytes are published and its values derived."""

    upload: Upload
    file: NewFile
    extraction: Extraction
    uploader: str  # the committing identity's subject
    job_key: str


@dataclass
class _Written:
    """An item whose rows are written; its values wait for the group's seq allocation."""

    row: StoredFile
    new: list[NewValue]  # the file's derived values, then its user tags
    derived: int  # how many of ``new`` are derived values (returned to the committer)


def _write_rows(session: Session, item: PendingCommit) -> _Written | CommittedFile:
    """End the upload as committed and record its file and JobRecord; a ``CommittedFile`` when
    an earlier attempt already did. Raises ``Gone``/``Conflict`` when it cannot be done, having
    written nothing (see the module text)."""
    upload, new_file = item.upload, item.file
    row = files.insert(session, new_file)
    if row is None:
        existing = files.by_upload(session, upload.id)
        if existing is not None:
            return as_committed(session, existing, item.job_key)
        gone = _gone_if_ended(session, upload.id)
        if gone is not None:
            raise gone
        raise Conflict(
            f"file ({new_file.file_class}, {new_file.name!r}) is already stored for this job; "
            "files are write-once: read it with GET, or store the new bytes under another name"
        )
    if not uploads.end(session, upload.id, UploadState.COMMITTED):
        # Ended meanwhile (aborted, superseded, expired): take back the row just written.
        files.remove(session, row.id)
        raise _gone_if_ended(session, upload.id) or _gone(UploadState.ABORTED)
    store_job_record(session, row, item.extraction, new=True)
    derived = file_values(item.extraction.values, row.file_class, row.name, row.id)
    # User tags a file carries (namespaced L&B UserTags) count as its uploader's tags on the job
    # at commit time.
    tagged = [
        NewValue(tag_attribute(name), value, "USER", row.committed_at, author_id=upload.starter_id)
        for name, value in item.extraction.user_tags
    ]
    return _Written(row, derived + tagged, len(derived))


def _gone_if_ended(session: Session, upload_id: str) -> Gone | None:
    """The 410 of an upload that is no longer in progress (None while it is)."""
    upload = uploads.get(session, upload_id)
    if upload is None:
        return _gone(UploadState.ABORTED)
    return None if upload.state in uploads.IN_PROGRESS else _gone(upload.state)


def _gone(state: str) -> Gone:
    return Gone(f"the upload was {state} before it could be committed; {after(state)}")


def record_commits(session: Session, items: list[PendingCommit]) -> list[CommittedFile | Exception]:
    """The database step of a group of commits in one transaction (see the module text)."""
    outcomes: list[_Written | CommittedFile | Exception] = []
    done: dict[str, _Written] = {}  # upload id -> written in this group (a commit sent twice)
    for item in items:
        if item.upload.id in done:
            outcomes.append(done[item.upload.id])
            continue
        try:
            written = _write_rows(session, item)
        except (Gone, Conflict) as exc:  # refused, nothing written (see the module text)
            outcomes.append(exc)
            continue
        if isinstance(written, _Written):
            done[item.upload.id] = written
        outcomes.append(written)
    # Last, so the counter's lock is held only for this insert and the commit.
    pending = [(w.row.job_id, v) for w in done.values() for v in w.new]
    seqs = iter(values.append_for_jobs(session, pending))
    stored: dict[str, list[StoredValue]] = {}
    for upload_id, w in done.items():
        mine = [next(seqs) for _ in w.new]
        stored[upload_id] = [
            StoredValue(v.name, v.value, v.origin, v.origin_detail, v.timestamp, seq, None)
            for v, seq in zip(w.new[: w.derived], mine[: w.derived], strict=True)
        ]
    answers: list[CommittedFile | Exception] = []
    seen: set[str] = set()
    for item, outcome in zip(items, outcomes, strict=True):
        if not isinstance(outcome, _Written):
            answers.append(outcome)
            continue
        upload_id = item.upload.id
        answer = CommittedFile(
            outcome.row, item.job_key, item.uploader, stored[upload_id], list(outcome.row.errors)
        )
        # The same commit twice in one group: the second hears what a later retry would.
        answers.append(replace(answer, created=False) if upload_id in seen else answer)
        seen.add(upload_id)
    return answers


class CommitGroups:
    """Upload commits' database steps, group-committed."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._batcher: Batcher[PendingCommit, CommittedFile] = Batcher(
            self._run, item_caused=database_item_caused
        )

    async def _run(self, items: list[PendingCommit]) -> list[CommittedFile | Exception]:
        return await self._db.run(lambda s: record_commits(s, items))

    async def record(self, item: PendingCommit) -> CommittedFile:
        # Shielded as a single transaction in a worker thread is: a caller that goes away (a
        # client disconnecting) hears of it only once its commit is decided, so its clean-up
        # never races the group that is writing it.
        with anyio.CancelScope(shield=True):
            committed = await self._batcher.submit(item)
        return committed

    async def close(self) -> None:
        await self._batcher.close()


class CommitSteps:
    """The commit of an upload (verify, publish, extract, record) and the handling of uploads
    that ended: the half of ``UploadService`` that finishes uploads (a mixin: it works on the
    service's own attributes)."""

    db: Database
    backend: StorageBackend
    plugins: PluginRegistry
    limits: UploadLimits
    _commits: CommitGroups

    async def raise_if_ended(
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
        return await self.finish(identity, upload, job)

    async def finish(self, identity: Identity, upload: Upload, job: JobInfo) -> CommittedFile:
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
            await self.raise_if_ended(upload.id, during="while it was being committed")
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
