from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy import select as core_select
from sqlmodel import Session, col

from jp_primary.db.models import IdentityRow, JobRow
from jp_primary.db.repositories._upsert import insert_ignore


@dataclass(frozen=True)
class JobInfo:
    id: int
    key: str
    jobid: str
    owner: str
    registered_at: datetime
    registered_by: str
    trusted: bool = False  # registered by a trusted service (see services.quarantine)


# Built once, as Core on the tables: run on the session's connection with bound parameters it
# skips the ORM's compile and entity loading (most of an upload start's lookup, and of a
# registration's CPU time when the aliased select was built per call).
_JOBS = JobRow.__table__  # type: ignore[attr-defined]
_OWNERS = IdentityRow.__table__.alias("job_owner")  # type: ignore[attr-defined]
_REGISTRARS = IdentityRow.__table__.alias("job_registrar")  # type: ignore[attr-defined]
_JOB_SELECT = core_select(
    _JOBS.c.id,
    _JOBS.c.key,
    _JOBS.c.jobid,
    _OWNERS.c.subject,
    _JOBS.c.registered_at,
    _REGISTRARS.c.subject,
    _JOBS.c.registered_trusted,
).select_from(
    _JOBS.join(_OWNERS, _OWNERS.c.id == _JOBS.c.owner_id).join(
        _REGISTRARS, _REGISTRARS.c.id == _JOBS.c.registered_by_id
    )
)
_BY_KEY = _JOB_SELECT.where(_JOBS.c.key == bindparam("wanted"))
_BY_ID = _JOB_SELECT.where(_JOBS.c.id == bindparam("wanted"))
_BY_JOBID = _JOB_SELECT.where(_JOBS.c.jobid == bindparam("wanted"))
# FOR SHARE of the job row (PostgreSQL; SQLite transactions are serial anyway): a write checked
# against the job's owner cannot interleave with a takeover that changes the owner.
_JOB_SHARED = _BY_KEY.with_for_update(read=True, of=_JOBS)
# FOR NO KEY UPDATE serialises the writers that take it but not the foreign-key checks (FOR KEY
# SHARE) of transactions inserting the job's values while they hold the change counter, which a
# plain FOR UPDATE would deadlock against. SQLite writers are serialised by BEGIN IMMEDIATE.
_JOB_SERIALISED = _BY_KEY.with_for_update(key_share=True, of=_JOBS)


def _one(session: Session, query: Any, wanted: object) -> JobInfo | None:
    """The job ``query`` finds by its one parameter, ``wanted``."""
    row = session.connection().execute(query, {"wanted": wanted}).first()
    if row is None:
        return None
    job_id, job_key, jobid, owner, registered_at, registrar, trusted = row
    return JobInfo(job_id, job_key, jobid, owner, registered_at, registrar, bool(trusted))


def by_key(session: Session, key: str) -> JobInfo | None:
    return _one(session, _BY_KEY, key)


def by_key_for_write(session: Session, key: str, *, serialised: bool = False) -> JobInfo | None:
    """The job, its row share-locked until the transaction ends, or with ``serialised`` locked
    against the other serialised writers too (taking the stronger lock at once: two writers that
    share-locked first would deadlock upgrading)."""
    return _one(session, _JOB_SERIALISED if serialised else _JOB_SHARED, key)


def by_id(session: Session, job_id: int) -> JobInfo | None:
    return _one(session, _BY_ID, job_id)


def by_jobid(session: Session, jobid: str) -> JobInfo | None:
    return _one(session, _BY_JOBID, jobid)


def insert(
    session: Session,
    *,
    key: str,
    jobid: str,
    owner_id: int,
    registrar_id: int,
    at: datetime,
    trusted: bool = False,
) -> int | None:
    """Insert a job and return its id; None when the key is already taken (nothing written)."""
    values = {
        "key": key,
        "jobid": jobid,
        "owner_id": owner_id,
        "registered_by_id": registrar_id,
        "registered_at": at,
        "registered_trusted": trusted,
    }
    return insert_ignore(session, "jobs", values, ["key"])


def mark_trusted(session: Session, job_id: int) -> None:
    """A trusted service confirmed the registration (same jobid and owner)."""
    stmt = (
        update(JobRow)
        .where(col(JobRow.id) == job_id, col(JobRow.registered_trusted).is_(False))
        .values(registered_trusted=True)
    )
    session.execute(stmt)


def take_over(
    session: Session, job_id: int, *, jobid: str, owner_id: int, registrar_id: int, at: datetime
) -> bool:
    """Re-register a job that no trusted service registered to a trusted registration's jobid
    and owner. False when a trusted registration got there first (nothing written); the row
    lock this takes (PostgreSQL) orders concurrent takeovers."""
    stmt = (
        update(JobRow)
        .where(col(JobRow.id) == job_id, col(JobRow.registered_trusted).is_(False))
        .values(
            jobid=jobid,
            owner_id=owner_id,
            registered_by_id=registrar_id,
            registered_at=at,
            registered_trusted=True,
        )
    )
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]
