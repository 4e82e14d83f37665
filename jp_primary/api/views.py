"""Service results shaped as response bodies."""

from __future__ import annotations

import json

from jp_primary.api import schemas
from jp_primary.db.models import FileRow
from jp_primary.db.repositories.jobs import JobInfo
from jp_primary.db.repositories.values import StoredValue
from jp_primary.services.files import FileView
from jp_primary.services.uploads import CommittedFile

# Listings show only this many problems per file (the count and the file's own place tell more).
LISTED_PROBLEMS = 5


def file_out(row: FileRow, uploader: str) -> schemas.FileOut:
    return schemas.FileOut(
        file_class=row.file_class,
        name=row.name,
        size=row.size,
        sha256=row.sha256,
        content_type=row.content_type,
        uploader=uploader,
        committed_at=row.committed_at,
        extraction_errors=json.loads(row.extraction_errors)[:LISTED_PROBLEMS],
        extraction_error_count=row.extraction_error_count,
    )


def file_errors_out(row: FileRow) -> schemas.FileErrorsOut:
    return schemas.FileErrorsOut(
        file_class=row.file_class,
        name=row.name,
        errors=json.loads(row.extraction_errors),
        error_count=row.extraction_error_count,
    )


def job_out(job: JobInfo, files: list[FileView] | None = None) -> schemas.JobOut:
    return schemas.JobOut(
        jobid=job.jobid,
        key=job.key,
        owner=job.owner,
        registered_at=job.registered_at,
        registered_by=job.registered_by,
        files=[file_out(f.file, f.uploader) for f in files or []],
    )


def value_out(v: StoredValue) -> schemas.ValueOut:
    return schemas.ValueOut(
        name=v.name,
        value=v.value,
        origin=v.origin,
        origin_detail=v.origin_detail,
        timestamp=v.timestamp,
        seq=v.seq,
    )


def tag_out(v: StoredValue) -> schemas.TagOut:
    return schemas.TagOut(
        name=v.name, value=v.value, author=v.author, recorded_at=v.timestamp, seq=v.seq
    )


def committed_out(c: CommittedFile) -> schemas.CommittedOut:
    base = file_out(c.file, c.uploader)
    extraction = schemas.ExtractionOut(
        values=[value_out(v) for v in c.values], errors=c.errors, error_count=c.error_count
    )
    return schemas.CommittedOut(**base.model_dump(by_alias=False), extraction=extraction)
