"""The database step of upload commits, group-committed (``services.batching``).

Every commit that stores values takes the change counter's row lock and holds it until its
transaction ends (db/repositories/values.py: commit order = seq order, which the feed relies on),
so commits are serialised by that lock and each pays its own WAL flush inside it. Commits that
arrive while a group is being written share the next transaction instead: each item's rows are
written first, in its own savepoint (a refused item — ended meanwhile, its name taken — rolls back
alone and hears its own error), and the values of the whole group are stored last, with one seq
allocation, so the lock is held only for that insert and the commit. Every answer is still tied
to a durable commit of its own rows; one item that breaks the transaction is isolated by
``isolating`` and never fails the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sqlmodel import Session

from jp_primary.attributes.names import tag_attribute
from jp_primary.db.repositories import files, identities, uploads, values
from jp_primary.db.repositories.files import NewFile, StoredFile
from jp_primary.db.repositories.uploads import Upload, UploadState
from jp_primary.db.repositories.values import NewValue, StoredValue
from jp_primary.db.session import Database
from jp_primary.errors import Conflict, Gone
from jp_primary.plugins.base import Extraction
from jp_primary.services.batching import Batcher, database_item_caused
from jp_primary.services.extraction import file_values, store_job_record


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
    an earlier attempt already did (raises ``Gone``/``Conflict`` when it cannot be done)."""
    upload, new_file = item.upload, item.file
    if not uploads.end(session, upload.id, UploadState.COMMITTED):
        existing = files.by_upload(session, upload.id)
        if existing is None:
            ended = uploads.get(session, upload.id)
            state = ended.state if ended is not None else UploadState.ABORTED
            raise Gone(f"the upload was {state} before it could be committed; {after(state)}")
        return as_committed(session, existing, item.job_key)
    row = files.insert(session, new_file)
    if row is None:
        raise Conflict(
            f"file ({new_file.file_class}, {new_file.name!r}) is already stored for this job; "
            "files are write-once: read it with GET, or store the new bytes under another name"
        )
    store_job_record(session, row, item.extraction)
    derived = file_values(item.extraction.values, row.file_class, row.name, row.id)
    # User tags a file carries (namespaced L&B UserTags) count as its uploader's tags on the job
    # at commit time.
    tagged = [
        NewValue(tag_attribute(name), value, "USER", row.committed_at, author_id=upload.starter_id)
        for name, value in item.extraction.user_tags
    ]
    return _Written(row, derived + tagged, len(derived))


def record_commits(session: Session, items: list[PendingCommit]) -> list[CommittedFile | Exception]:
    """The database step of a group of commits in one transaction (see the module text)."""
    outcomes: list[_Written | CommittedFile | Exception] = []
    done: dict[str, _Written] = {}  # upload id -> written in this group (a commit sent twice)
    for item in items:
        if item.upload.id in done:
            outcomes.append(done[item.upload.id])
            continue
        try:
            with session.begin_nested():
                written = _write_rows(session, item)
        except (Gone, Conflict) as exc:
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
        return await self._batcher.submit(item)

    async def close(self) -> None:
        await self._batcher.close()
