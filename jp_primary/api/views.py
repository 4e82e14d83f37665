"""Service results shaped as response bodies."""

from __future__ import annotations

from jp_primary.api import schemas
from jp_primary.services.results import CommittedFile, FileView, JobInfo, StoredFile, StoredValue

# Listings show only this many problems per file (the count and the file's own place tell more).
LISTED_PROBLEMS = 5


def file_out(file: StoredFile, uploader: str) -> schemas.FileOut:
    return schemas.FileOut(
        file_class=file.file_class,
        name=file.name,
        size=file.size,
        sha256=file.sha256,
        content_type=file.content_type,
        uploader=uploader,
        committed_at=file.committed_at,
        extraction_errors=file.errors[:LISTED_PROBLEMS],
        extraction_error_count=file.error_count,
    )


def file_errors_out(file: StoredFile) -> schemas.FileErrorsOut:
    return schemas.FileErrorsOut(
        file_class=file.file_class,
        name=file.name,
        errors=file.errors,
        error_count=file.error_count,
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
