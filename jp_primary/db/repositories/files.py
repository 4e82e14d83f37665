"""Committed files. Services get ``StoredFile`` dataclasses, never the ORM rows."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete
from sqlmodel import Session, col, select

from jp_primary.db.models import FileRow
from jp_primary.db.repositories._upsert import insert_unless_conflict


@dataclass(frozen=True)
class NewFile:
    """A file to record at commit (``errors`` the first extraction problems, ``error_count``
    every one found)."""

    job_id: int
    file_class: str
    name: str
    size: int
    sha256: str
    content_type: str | None
    uploader_id: int
    upload_id: str | None
    committed_at: datetime
    location: str
    errors: list[dict[str, object]]  # the first extraction problems kept
    error_count: int  # every extraction problem found


@dataclass(frozen=True)
class StoredFile(NewFile):
    """A committed file, as repositories and services hand it out: what was recorded, and its id."""

    id: int


def _stored(row: FileRow) -> StoredFile:
    assert row.id is not None
    return StoredFile(
        id=row.id,
        job_id=row.job_id,
        file_class=row.file_class,
        name=row.name,
        size=row.size,
        sha256=row.sha256,
        content_type=row.content_type,
        uploader_id=row.uploader_id,
        upload_id=row.upload_id,
        committed_at=row.committed_at,
        location=row.location,
        errors=json.loads(row.extraction_errors),
        error_count=row.extraction_error_count,
    )


def insert(session: Session, new: NewFile) -> StoredFile | None:
    """Insert a committed file; None when ``(job, class, name)`` is already stored."""
    errors = json.dumps(new.errors)
    row = {
        "job_id": new.job_id,
        "file_class": new.file_class,
        "name": new.name,
        "size": new.size,
        "sha256": new.sha256,
        "content_type": new.content_type,
        "uploader_id": new.uploader_id,
        "upload_id": new.upload_id,
        "committed_at": new.committed_at,
        "location": new.location,
        "extraction_errors": errors,
        "extraction_error_count": new.error_count,
    }
    file_id = insert_unless_conflict(session, "files", row)
    if file_id is None:
        return None
    # The errors as they read back (JSON), like every other StoredFile's.
    return _stored_new(new, int(file_id), json.loads(errors))


_FILES = FileRow.__table__  # type: ignore[attr-defined]
_EXISTS = (
    _FILES.select()
    .with_only_columns(_FILES.c.id)
    .where(
        _FILES.c.job_id == bindparam("job_id"),
        _FILES.c.file_class == bindparam("file_class"),
        _FILES.c.name == bindparam("name"),
    )
)


def exists(session: Session, job_id: int, file_class: str, name: str) -> bool:
    """Whether ``(job, class, name)`` is stored (every upload start asks: a Core statement)."""
    params = {"job_id": job_id, "file_class": file_class, "name": name}
    return session.connection().execute(_EXISTS, params).first() is not None


def _stored_new(new: NewFile, file_id: int, errors: list[dict[str, object]]) -> StoredFile:
    fields = asdict(new)
    fields["errors"] = errors
    return StoredFile(**fields, id=file_id)


def get(session: Session, job_id: int, file_class: str, name: str) -> StoredFile | None:
    stmt = select(FileRow).where(
        FileRow.job_id == job_id, FileRow.file_class == file_class, FileRow.name == name
    )
    row = session.exec(stmt).first()
    return _stored(row) if row is not None else None


def by_upload(session: Session, upload_id: str) -> StoredFile | None:
    row = session.exec(select(FileRow).where(FileRow.upload_id == upload_id)).first()
    return _stored(row) if row is not None else None


def for_job(session: Session, job_id: int) -> list[StoredFile]:
    stmt = select(FileRow).where(FileRow.job_id == job_id).order_by(col(FileRow.id))
    return [_stored(row) for row in session.exec(stmt)]


def for_class(session: Session, file_class: str | None, job_id: int | None) -> list[StoredFile]:
    stmt = select(FileRow).order_by(col(FileRow.id))
    if file_class is not None:
        stmt = stmt.where(FileRow.file_class == file_class)
    if job_id is not None:
        stmt = stmt.where(FileRow.job_id == job_id)
    return [_stored(row) for row in session.exec(stmt)]


def all_locations(session: Session) -> set[str]:
    return set(session.exec(select(FileRow.location)))


def set_extraction_errors(
    session: Session, file_id: int, errors: list[dict[str, object]], count: int
) -> None:
    """The first problems and how many were found in all."""
    row = session.get(FileRow, file_id)
    if row is not None:
        row.extraction_errors = json.dumps(errors)
        row.extraction_error_count = count
        session.add(row)


def is_referenced(session: Session, location: str) -> bool:
    """Whether a committed file's bytes live at ``location``."""
    stmt = select(FileRow.id).where(FileRow.location == location)
    return session.exec(stmt).first() is not None


def remove(session: Session, file_id: int) -> None:
    """Take back a file row inserted in this transaction (its commit was refused after all)."""
    session.connection().execute(delete(_FILES).where(_FILES.c.id == file_id))


def remove_for_job(session: Session, job_id: int) -> None:
    """Drop every file row of a job (a takeover; its derived values must be gone first)."""
    session.execute(delete(FileRow).where(col(FileRow.job_id) == job_id))
