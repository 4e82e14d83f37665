"""Group-committed upload commits (services/upload_commit.py): every item gets its own outcome,
a refused or broken item never fails the others, and each file's values keep one gap-free run of
seqs allocated after every row of the group is written."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from typing import Any

from jp_primary.db.repositories import uploads, values
from jp_primary.db.repositories.files import NewFile
from jp_primary.db.repositories.uploads import Upload, UploadState
from jp_primary.errors import Conflict, Gone
from jp_primary.plugins.base import DerivedValue, Extraction
from jp_primary.services.upload_commit import (
    CommitGroups,
    CommittedFile,
    PendingCommit,
    record_commits,
)
from tests.helpers import ALICE, Api, register_job, start_upload

NS = "http://test.example/commit-groups"


def _sent_upload(api: Api, key: str, name: str) -> Upload:
    """An API upload of ``name`` whose bytes are received, ready to commit."""
    ticket = start_upload(api, key, name=name).json()
    sent = api.client.put(ticket["url"], content=name.encode(), headers=api.auth(ALICE))
    assert sent.status_code == 204, sent.text
    row = _services(api).db.run_sync(lambda s: uploads.get(s, ticket["upload_id"]))
    assert row is not None
    return row


def _services(api: Api) -> Any:
    return api.client.app.state.services  # type: ignore[attr-defined]


def _pending(
    api: Api, key: str, upload: Upload, *, stored_as: str | None = None, n_values: int = 2
) -> PendingCommit:
    now = datetime.now(UTC)
    name = stored_as if stored_as is not None else upload.name
    new_file = NewFile(
        job_id=upload.job_id,
        file_class=upload.file_class,
        name=name,
        size=len(upload.name),
        sha256=hashlib.sha256(upload.name.encode()).hexdigest(),
        content_type=None,
        uploader_id=upload.starter_id,
        upload_id=upload.id,
        committed_at=now,
        location=f"files/{key}/{upload.file_class}/{name}",
        errors=[],
        error_count=0,
    )
    derived = [DerivedValue(f"{NS}:v{i}", f"{upload.name}-{i}", now) for i in range(n_values)]
    return PendingCommit(upload, new_file, Extraction(values=derived), ALICE, key)


def _state(api: Api, upload_id: str) -> str:
    row = _services(api).db.run_sync(lambda s: uploads.get(s, upload_id))
    assert row is not None
    return str(row.state)


def test_a_group_answers_each_commit_and_allocates_seqs_after_all_rows(api: Api) -> None:
    key = register_job(api)
    a, b, c, d = (_sent_upload(api, key, name) for name in ("a", "b", "c", "d"))
    db = _services(api).db
    db.run_sync(lambda s: uploads.end(s, b.id, UploadState.ABORTED))  # ended before its commit
    items = [
        _pending(api, key, a),
        _pending(api, key, b),
        _pending(api, key, a),  # the same commit twice in one group
        _pending(api, key, d, stored_as="a"),  # a name the group has just taken
        _pending(api, key, c, n_values=3),
    ]
    outcomes = db.run_sync(lambda s: record_commits(s, items))

    first, gone, again, taken, third = outcomes
    assert isinstance(first, CommittedFile)
    assert first.created
    assert isinstance(gone, Gone)
    assert "aborted" in gone.detail
    assert isinstance(again, CommittedFile)
    assert not again.created
    assert again.file.id == first.file.id
    assert again.values == first.values
    assert isinstance(taken, Conflict)
    assert "write-once" in taken.detail
    assert isinstance(third, CommittedFile)
    assert third.created
    # The refused item rolled back alone: its upload is still open, the others are committed.
    assert _state(api, d.id) == UploadState.RECEIVED
    assert _state(api, a.id) == _state(api, c.id) == UploadState.COMMITTED
    # One allocation for the group, in item order: a's values, then c's, without a gap.
    seqs = [v.seq for v in first.values] + [v.seq for v in third.values]
    assert seqs == list(range(seqs[0], seqs[0] + 5))
    stored = db.run_sync(lambda s: values.for_file(s, third.file.id))
    assert [(v.value, v.seq) for v in stored] == [(v.value, v.seq) for v in third.values]
    assert [v.value for v in stored] == ["c-0", "c-1", "c-2"]


def test_an_item_that_breaks_the_group_transaction_fails_alone(api: Api) -> None:
    key = register_job(api)
    good, bad, other = (_sent_upload(api, key, name) for name in ("good", "bad", "other"))
    broken = _pending(api, key, bad)
    # Extraction problems that cannot be stored as JSON: the file row's insert raises inside
    # the group's transaction, which no savepoint answers (it is not a refusal).
    broken.file.errors.append({"message": object()})
    groups = CommitGroups(_services(api).db)

    async def commit_together() -> list[CommittedFile | BaseException]:
        try:
            return await asyncio.gather(
                groups.record(_pending(api, key, good)),
                groups.record(broken),
                groups.record(_pending(api, key, other)),
                return_exceptions=True,
            )
        finally:
            await groups.close()

    first, failed, last = asyncio.run(commit_together())
    assert isinstance(failed, TypeError)
    assert isinstance(first, CommittedFile)
    assert isinstance(last, CommittedFile)
    assert _state(api, bad.id) == UploadState.RECEIVED
    db = _services(api).db
    for done in (first, last):
        stored = db.run_sync(lambda s, f=done: values.for_file(s, f.file.id))
        assert [(v.value, v.seq) for v in stored] == [(v.value, v.seq) for v in done.values]
        assert len(stored) == 2
