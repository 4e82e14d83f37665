"""Stored JobRecords, one per file whose plugin derives one (see ``JobRecordRow``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert
from sqlmodel import Session, col

from jp_primary.db.models import JobRecordRow


def put(session: Session, file_id: int, xml: str | None, detail: str | None, at: datetime) -> None:
    """Store (or replace) the record derived from a file; ``xml`` None with the reason."""
    session.execute(delete(JobRecordRow).where(col(JobRecordRow.file_id) == file_id))
    session.add(JobRecordRow(file_id=file_id, xml=xml, detail=detail, derived_at=at))
    session.flush()


_INSERT = insert(JobRecordRow.__table__)  # type: ignore[attr-defined]


def put_new(
    session: Session, file_id: int, xml: str | None, detail: str | None, at: datetime
) -> None:
    """Store the record of a file committed in this transaction (it has none yet): one Core
    insert instead of ``put``'s delete, ORM object and flush."""
    values = {"file_id": file_id, "xml": xml, "detail": detail, "derived_at": at}
    session.connection().execute(_INSERT, values)


@dataclass(frozen=True)
class StoredRecord:
    """The record derived from a file: ``xml`` None when it yields none, ``detail`` says why."""

    file_id: int
    xml: str | None
    detail: str | None
    derived_at: datetime


def get(session: Session, file_id: int) -> StoredRecord | None:
    row = session.get(JobRecordRow, file_id)
    if row is None:
        return None
    return StoredRecord(row.file_id, row.xml, row.detail, row.derived_at)
