"""The FTP door's grants in the database, so the door can run in another process or host.

A grant is usable only while its upload is in progress: aborting, committing or expiring the
upload revokes it without any further bookkeeping.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete, update
from sqlmodel import col, select

from jp_primary.backends.door_grants import DoorGrant
from jp_primary.db.models import DoorGrantRow, UploadRow
from jp_primary.db.repositories.uploads import IN_PROGRESS
from jp_primary.db.session import new_session


class DatabaseDoorGrants:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, grant: DoorGrant) -> None:
        with new_session(self._engine) as session:
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
            session.commit()

    def get(self, user: str) -> DoorGrant | None:
        stmt = (
            select(DoorGrantRow)
            .join(UploadRow, col(UploadRow.id) == col(DoorGrantRow.upload_id))
            .where(DoorGrantRow.user == user, col(UploadRow.state).in_(IN_PROGRESS))
        )
        with new_session(self._engine) as session:
            row = session.exec(stmt).first()
        if row is None:
            return None
        return DoorGrant(
            row.user, row.password_sha256, row.upload_id, row.target, row.deadline, row.used_at
        )

    def consume(self, user: str, now: datetime) -> bool:
        stmt = (
            update(DoorGrantRow)
            .where(
                col(DoorGrantRow.user) == user,
                col(DoorGrantRow.used_at).is_(None),
                col(DoorGrantRow.deadline) > now,
            )
            .values(used_at=now)
        )
        with new_session(self._engine) as session:
            changed = session.execute(stmt).rowcount  # type: ignore[attr-defined]
            session.commit()
        return bool(changed)

    def revoke(self, user: str) -> None:
        with new_session(self._engine) as session:
            session.execute(delete(DoorGrantRow).where(col(DoorGrantRow.user) == user))
            session.commit()
