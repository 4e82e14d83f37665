from __future__ import annotations

from sqlmodel import Session, col, select

from jp_primary.db.models import FileRow
from jp_primary.db.repositories._upsert import add_unless_conflict


def insert(session: Session, row: FileRow) -> bool:
    """Insert a committed file; False when ``(job, class, name)`` is already stored."""
    return add_unless_conflict(session, row)


def get(session: Session, job_id: int, file_class: str, name: str) -> FileRow | None:
    stmt = select(FileRow).where(
        FileRow.job_id == job_id, FileRow.file_class == file_class, FileRow.name == name
    )
    return session.exec(stmt).first()


def by_upload(session: Session, upload_id: str) -> FileRow | None:
    return session.exec(select(FileRow).where(FileRow.upload_id == upload_id)).first()


def for_job(session: Session, job_id: int) -> list[FileRow]:
    stmt = select(FileRow).where(FileRow.job_id == job_id).order_by(col(FileRow.id))
    return list(session.exec(stmt))


def for_class(session: Session, file_class: str | None, job_id: int | None) -> list[FileRow]:
    stmt = select(FileRow).order_by(col(FileRow.id))
    if file_class is not None:
        stmt = stmt.where(FileRow.file_class == file_class)
    if job_id is not None:
        stmt = stmt.where(FileRow.job_id == job_id)
    return list(session.exec(stmt))


def all_locations(session: Session) -> set[str]:
    return set(session.exec(select(FileRow.location)))


def set_extraction_errors(session: Session, file_id: int, errors_json: str, count: int) -> None:
    """The first problems (JSON list) and how many were found in all."""
    row = session.get(FileRow, file_id)
    if row is not None:
        row.extraction_errors = errors_json
        row.extraction_error_count = count
        session.add(row)
