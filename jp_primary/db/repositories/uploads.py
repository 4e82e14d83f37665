from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import bindparam, case, literal, or_, update
from sqlmodel import Session, col, select

from jp_primary.db.models import UploadRow
from jp_primary.db.repositories._upsert import insert_unless_conflict


class UploadState(StrEnum):
    """The states of an upload, shared by the upload service and this repository (the column
    stays text: the values are these strings)."""

    OPEN = "open"  # started, bytes not (all) received
    RECEIVED = "received"  # bytes staged (FTP door), not yet committed
    # How an upload ended: committed (its file is stored), aborted (by its starter), expired
    # (past its deadline), superseded (its starter began the same (class, name) again), failed
    # (a direct upload whose bytes did not match what was declared: its credentials are used up).
    COMMITTED = "committed"
    ABORTED = "aborted"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"
    FAILED = "failed"


IN_PROGRESS = (UploadState.OPEN, UploadState.RECEIVED)
ENDED = (
    UploadState.COMMITTED,
    UploadState.ABORTED,
    UploadState.EXPIRED,
    UploadState.SUPERSEDED,
    UploadState.FAILED,
)


@dataclass(frozen=True)
class Upload:
    """An upload as services see it (and hand to ``insert``), never the ORM row.

    ``slot`` is ``slot(job_id, file_class, name)`` while the upload is in progress, None after.
    """

    id: str
    job_id: int
    file_class: str
    name: str
    content_type: str | None
    declared_size: int | None
    declared_sha256: str | None
    method: str
    state: str
    slot: str | None
    starter_id: int
    created_at: datetime
    expires_at: datetime
    staging_key: str | None = None
    received_size: int | None = None
    received_sha256: str | None = None


def _upload(row: UploadRow) -> Upload:
    return Upload(
        id=row.id,
        job_id=row.job_id,
        file_class=row.file_class,
        name=row.name,
        content_type=row.content_type,
        declared_size=row.declared_size,
        declared_sha256=row.declared_sha256,
        method=row.method,
        state=row.state,
        slot=row.slot,
        starter_id=row.starter_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        staging_key=row.staging_key,
        received_size=row.received_size,
        received_sha256=row.received_sha256,
    )


_UPLOADS = UploadRow.__table__  # type: ignore[attr-defined]
# In progress, for the prebuilt statements: two comparisons with fixed parameters, where an
# ``IN`` of a list is re-rendered (an "expanding" parameter) at every execution.
_IN_PROGRESS = or_(*(_UPLOADS.c.state == state for state in IN_PROGRESS))


def slot(job_id: int, file_class: str, name: str) -> str:
    return f"{job_id}/{file_class}/{name}"


def insert(session: Session, upload: Upload) -> bool:
    """Reserve the upload's slot; False when the slot is taken by an upload in progress."""
    return insert_unless_conflict(session, "uploads", asdict(upload)) is not None


def get(session: Session, upload_id: str) -> Upload | None:
    row = session.get(UploadRow, upload_id)
    return _upload(row) if row is not None else None


def holding(session: Session, slot_name: str) -> Upload | None:
    """The upload in progress that holds ``slot_name``, if any."""
    row = session.exec(select(UploadRow).where(UploadRow.slot == slot_name)).first()
    return _upload(row) if row is not None else None


def _at_least(until: datetime) -> object:
    column = col(UploadRow.expires_at)
    as_stored = literal(until, UploadRow.__table__.c.expires_at.type)  # type: ignore[attr-defined]
    return case((column < until, as_stored), else_=column)


def keep_open(session: Session, upload_id: str, until: datetime) -> bool:
    """Bytes are arriving: move the deadline to at least ``until``. False when the upload is no
    longer in progress (ended under its writer)."""
    stmt = (
        update(UploadRow)
        .where(col(UploadRow.id) == upload_id, col(UploadRow.state).in_(IN_PROGRESS))
        .values(expires_at=_at_least(until))
    )
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


_RECEIVED = (
    update(_UPLOADS)
    .where(_UPLOADS.c.id == bindparam("upload_id"), _IN_PROGRESS)
    .values(
        state=UploadState.RECEIVED,
        staging_key=bindparam("staging_key"),
        received_size=bindparam("received_size"),
        received_sha256=bindparam("received_sha256"),
        expires_at=case(
            (
                _UPLOADS.c.expires_at < bindparam("until", type_=_UPLOADS.c.expires_at.type),
                bindparam("until", type_=_UPLOADS.c.expires_at.type),
            ),
            else_=_UPLOADS.c.expires_at,
        ),
    )
)


def record_received(
    session: Session,
    upload_id: str,
    staging_key: str,
    size: int,
    sha256: str,
    commit_until: datetime,
) -> bool:
    """Remember the bytes of the latest PUT and keep the upload open for its commit until at least
    ``commit_until``; False when the upload is no longer in progress."""
    params = {
        "upload_id": upload_id,
        "staging_key": staging_key,
        "received_size": size,
        "received_sha256": sha256,
        "until": commit_until,
    }
    return bool(session.connection().execute(_RECEIVED, params).rowcount)


def clear_received(session: Session, upload_id: str) -> None:
    stmt = (
        update(UploadRow)
        .where(col(UploadRow.id) == upload_id, col(UploadRow.state).in_(IN_PROGRESS))
        .values(state=UploadState.OPEN, staging_key=None, received_size=None, received_sha256=None)
    )
    session.execute(stmt)


# Built once and run as Core on the session's connection: the ORM's bulk-update path (an
# ORM-enabled ``update`` through ``Session.execute``) cost several times the statement itself.
_END = (
    update(_UPLOADS)
    .where(_UPLOADS.c.id == bindparam("upload_id"), _IN_PROGRESS)
    .values(state=bindparam("new_state"), slot=None)
)


def end(session: Session, upload_id: str, state: UploadState) -> bool:
    """Move an in-progress upload to ``state`` (one of ``ENDED``), freeing its slot.

    The conditional update is the arbiter between concurrent commits: exactly one wins.
    """
    params = {"upload_id": upload_id, "new_state": str(state)}
    return bool(session.connection().execute(_END, params).rowcount)


def expire(session: Session, upload_id: str, now: datetime) -> bool:
    """End an upload whose deadline has passed at ``now``; False when it is no longer in
    progress or a writer has just moved its deadline (the update re-checks both)."""
    stmt = (
        update(UploadRow)
        .where(
            col(UploadRow.id) == upload_id,
            col(UploadRow.state).in_(IN_PROGRESS),
            col(UploadRow.expires_at) < now,
        )
        .values(state=UploadState.EXPIRED, slot=None)
    )
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


_EXPIRED = (
    _UPLOADS.select()
    .with_only_columns(_UPLOADS.c.id)
    .where(_IN_PROGRESS, _UPLOADS.c.expires_at < bindparam("now", type_=_UPLOADS.c.expires_at.type))
)
_EXPIRED_OF_JOB = _EXPIRED.where(_UPLOADS.c.job_id == bindparam("job_id"))


def expired_ids(session: Session, now: datetime, job_id: int | None = None) -> list[str]:
    """The ids of the uploads in progress past their deadline at ``now`` (of one job: each
    upload start asks, so a prebuilt Core statement)."""
    if job_id is None:
        found = session.connection().execute(_EXPIRED, {"now": now})
    else:
        found = session.connection().execute(_EXPIRED_OF_JOB, {"now": now, "job_id": job_id})
    return list(found.scalars())


def in_progress_ids(session: Session) -> set[str]:
    stmt = select(UploadRow.id).where(col(UploadRow.state).in_(IN_PROGRESS))
    return set(session.exec(stmt))


def in_progress_for_job(session: Session, job_id: int) -> list[Upload]:
    stmt = select(UploadRow).where(
        UploadRow.job_id == job_id, col(UploadRow.state).in_(IN_PROGRESS)
    )
    return [_upload(row) for row in session.exec(stmt)]
