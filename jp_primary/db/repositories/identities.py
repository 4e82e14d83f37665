from __future__ import annotations

from datetime import UTC, datetime
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, event
from sqlmodel import Session, col, select

from jp_primary.db.models import IdentityRow
from jp_primary.db.repositories._upsert import insert_ignore

# Identities are insert-only, so a committed subject -> id pair never changes: cache it per
# database. Pairs seen inside a transaction join the cache only when it commits (a rolled-back
# insert must not leave an id behind).
_COMMITTED: WeakKeyDictionary[Engine, dict[str, int]] = WeakKeyDictionary()
_PENDING = "jp_identities_pending"


def _cache(session: Session) -> dict[str, int]:
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    return _COMMITTED.setdefault(engine, {})


@event.listens_for(Session, "after_commit")
def _remember_committed(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending:
        _cache(session).update(pending)


@event.listens_for(Session, "after_rollback")
def _forget_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


def identity_id(session: Session, subject: str) -> int:
    """The id of ``subject``, created on first sight (safe against concurrent creators)."""
    cached = _cache(session).get(subject)
    if cached is not None:
        return cached
    found = session.exec(select(IdentityRow.id).where(IdentityRow.subject == subject)).first()
    if found is None:
        values = {"subject": subject, "created_at": datetime.now(UTC)}
        found = insert_ignore(session, "identities", values, ["subject"])
    if found is None:  # created meanwhile by a concurrent transaction
        found = session.exec(select(IdentityRow.id).where(IdentityRow.subject == subject)).one()
    assert found is not None
    session.info.setdefault(_PENDING, {})[subject] = found
    return found


def subjects(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.exec(
        select(IdentityRow.id, IdentityRow.subject).where(col(IdentityRow.id).in_(ids))
    )
    return {int(row_id or 0): subject for row_id, subject in rows}
