from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session, col, select

from jp_primary.db.models import IdentityRow
from jp_primary.db.repositories._upsert import insert_ignore


def identity_id(session: Session, subject: str) -> int:
    """The id of ``subject``, created on first sight (safe against concurrent creators)."""
    found = session.exec(select(IdentityRow.id).where(IdentityRow.subject == subject)).first()
    if found is not None:
        return found
    values = {"subject": subject, "created_at": datetime.now(UTC)}
    session.execute(insert_ignore(session, "identities", values, ["subject"]))
    created = session.exec(select(IdentityRow.id).where(IdentityRow.subject == subject)).one()
    assert created is not None
    return created


def subjects(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.exec(
        select(IdentityRow.id, IdentityRow.subject).where(col(IdentityRow.id).in_(ids))
    )
    return {int(row_id or 0): subject for row_id, subject in rows}
