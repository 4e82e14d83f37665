from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from jp_primary.db.models import IdentityRow, JobRow
from jp_primary.db.repositories._upsert import insert_ignore


@dataclass(frozen=True)
class JobRecord:
    id: int
    key: str
    jobid: str
    owner: str
    registered_at: datetime
    registered_by: str


_OWNER = aliased(IdentityRow)
_REGISTRAR = aliased(IdentityRow)
# Built once: building aliased selects per call was most of a registration's CPU time.
_JOB_QUERY = (
    select(JobRow, _OWNER.subject, _REGISTRAR.subject)
    .join(_OWNER, _OWNER.id == JobRow.owner_id)  # type: ignore[arg-type]
    .join(_REGISTRAR, _REGISTRAR.id == JobRow.registered_by_id)  # type: ignore[arg-type]
)


def _record(row: tuple[JobRow, str, str]) -> JobRecord:
    job, owner, registrar = row
    assert job.id is not None
    return JobRecord(job.id, job.key, job.jobid, owner, job.registered_at, registrar)


def by_key(session: Session, key: str) -> JobRecord | None:
    row = session.exec(_JOB_QUERY.where(JobRow.key == key)).first()
    return _record(row) if row else None


def by_id(session: Session, job_id: int) -> JobRecord | None:
    row = session.exec(_JOB_QUERY.where(JobRow.id == job_id)).first()
    return _record(row) if row else None


def by_jobid(session: Session, jobid: str) -> JobRecord | None:
    row = session.exec(_JOB_QUERY.where(JobRow.jobid == jobid)).first()
    return _record(row) if row else None


def insert(
    session: Session, *, key: str, jobid: str, owner_id: int, registrar_id: int, at: datetime
) -> int | None:
    """Insert a job and return its id; None when the key is already taken (nothing written)."""
    values = {
        "key": key,
        "jobid": jobid,
        "owner_id": owner_id,
        "registered_by_id": registrar_id,
        "registered_at": at,
    }
    return insert_ignore(session, "jobs", values, ["key"])


def lock(session: Session, job_id: int) -> None:
    """Hold the job's row until the transaction ends (PostgreSQL; SQLite writers are serialised
    by BEGIN IMMEDIATE already), so checks of a job's totals are not raced by its other writers.

    ``FOR NO KEY UPDATE``: it serialises the lockers but not the foreign-key checks (``FOR KEY
    SHARE``) of transactions inserting the job's values while they hold the change counter, which
    a plain ``FOR UPDATE`` would deadlock against."""
    stmt = select(JobRow.id).where(JobRow.id == job_id).with_for_update(key_share=True)
    session.exec(stmt).first()
