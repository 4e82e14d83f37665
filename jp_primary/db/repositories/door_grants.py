"""The FTP door's grants in the database, so the door can run in another process or host.

A grant is usable only while its upload is in progress: aborting, committing or expiring the
upload revokes it without any further bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from jp_primary.db.models import DoorGrantRow, UploadRow
from jp_primary.db.repositories.uploads import IN_PROGRESS


@dataclass(frozen=True)
class StoredGrant:
    user: str
    password_sha256: str
    upload_id: str
    target: str
    deadline: datetime
    used_at: datetime | None


def add(session: Session, grant: StoredGrant) -> None:
    session.add(
        DoorGrantRow(
            user=grant.user,
            password_sha256=grant.password_sha256,
            upload_id=grant.upload_id,
            target=grant.target,
            deadline=grant.deadline,
            used_at=grant.used_at,
        )
    )


def get_open(session: Session, user: str) -> StoredGrant | None:
    """The grant of ``user`` while its upload is in progress."""
    stmt = (
        select(DoorGrantRow)
        .join(UploadRow, col(UploadRow.id) == col(DoorGrantRow.upload_id))
        .where(DoorGrantRow.user == user, col(UploadRow.state).in_(IN_PROGRESS))
    )
    row = session.exec(stmt).first()
    if row is None:
        return None
    return StoredGrant(
        row.user, row.password_sha256, row.upload_id, row.target, row.deadline, row.used_at
    )


def consume(session: Session, user: str, now: datetime) -> bool:
    """Mark the grant used if it still is usable at ``now``; one atomic conditional update."""
    stmt = (
        update(DoorGrantRow)
        .where(
            col(DoorGrantRow.user) == user,
            col(DoorGrantRow.used_at).is_(None),
            col(DoorGrantRow.deadline) > now,
        )
        .values(used_at=now)
    )
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def revoke(session: Session, user: str) -> None:
    session.execute(delete(DoorGrantRow).where(col(DoorGrantRow.user) == user))


def revoke_for_uploads(session: Session, upload_ids: list[str]) -> None:
    """Drop the grants of these uploads (ended by a takeover)."""
    if upload_ids:
        session.execute(delete(DoorGrantRow).where(col(DoorGrantRow.upload_id).in_(upload_ids)))
