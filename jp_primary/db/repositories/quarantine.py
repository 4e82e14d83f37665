"""Quarantine entries (what a takeover removed from a job) and the retracted values' seqs.

Services get ``QuarantineEntry`` dataclasses (the JSON columns parsed), never the ORM rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from jp_primary.db.models import QuarantineRow, RetractedValueRow


@dataclass(frozen=True)
class NewEntry:
    job_id: int
    jobid: str  # the jobid the squatter registered
    squatter: str  # the owner of the squatting registration
    squatter_registrar: str
    squatter_registered_at: datetime
    claimed_by: str  # the trusted registrar
    new_owner: str
    quarantined_at: datetime
    retain_until: datetime
    files: list[dict[str, Any]]
    attribute_values: list[dict[str, Any]]
    uploads: list[dict[str, Any]]


@dataclass(frozen=True)
class QuarantineEntry(NewEntry):
    id: int


def _entry(row: QuarantineRow) -> QuarantineEntry:
    assert row.id is not None
    return QuarantineEntry(
        job_id=row.job_id,
        jobid=row.jobid,
        squatter=row.squatter,
        squatter_registrar=row.squatter_registrar,
        squatter_registered_at=row.squatter_registered_at,
        claimed_by=row.claimed_by,
        new_owner=row.new_owner,
        quarantined_at=row.quarantined_at,
        retain_until=row.retain_until,
        files=json.loads(row.files),
        attribute_values=json.loads(row.attribute_values),
        uploads=json.loads(row.uploads),
        id=row.id,
    )


def add(session: Session, new: NewEntry) -> int:
    """Store an entry; its id."""
    row = QuarantineRow(
        job_id=new.job_id,
        jobid=new.jobid,
        squatter=new.squatter,
        squatter_registrar=new.squatter_registrar,
        squatter_registered_at=new.squatter_registered_at,
        claimed_by=new.claimed_by,
        new_owner=new.new_owner,
        quarantined_at=new.quarantined_at,
        retain_until=new.retain_until,
        files=json.dumps(new.files),
        attribute_values=json.dumps(new.attribute_values),
        uploads=json.dumps(new.uploads),
    )
    session.add(row)
    session.flush()
    assert row.id is not None
    return row.id


def get(session: Session, entry_id: int) -> QuarantineEntry | None:
    row = session.get(QuarantineRow, entry_id)
    return _entry(row) if row is not None else None


def entries(session: Session) -> list[QuarantineEntry]:
    return [_entry(r) for r in session.exec(select(QuarantineRow).order_by(col(QuarantineRow.id)))]


def due(session: Session, cutoff: datetime) -> list[QuarantineEntry]:
    """The entries whose retention ended at ``cutoff``."""
    stmt = select(QuarantineRow).where(QuarantineRow.retain_until <= cutoff)
    return [_entry(r) for r in session.exec(stmt)]


def set_files(session: Session, entry_id: int, files: list[dict[str, Any]]) -> None:
    row = session.get(QuarantineRow, entry_id)
    if row is not None:
        row.files = json.dumps(files)
        session.add(row)


def remove(session: Session, entry_id: int) -> None:
    session.execute(delete(QuarantineRow).where(col(QuarantineRow.id) == entry_id))


def locations(session: Session) -> set[str]:
    """Every location an entry keeps."""
    found: set[str] = set()
    for files in session.exec(select(QuarantineRow.files)):
        found.update(f["location"] for f in json.loads(files))
    return found


def retract(
    session: Session, job_id: int, seqs: list[int], at_seq: int, at: datetime, reason: str
) -> None:
    """Record ``seqs`` of ``job_id`` as retracted, announced with the changes at ``at_seq``."""
    for seq in seqs:
        session.add(
            RetractedValueRow(
                seq=seq, job_id=job_id, announced_seq=at_seq, retracted_at=at, reason=reason
            )
        )


def retracted_for_job(session: Session, job_id: int) -> list[tuple[int, int]]:
    """(retracted seq, announced at seq) of one job, oldest first."""
    stmt = (
        select(RetractedValueRow.seq, RetractedValueRow.announced_seq)
        .where(RetractedValueRow.job_id == job_id)
        .order_by(col(RetractedValueRow.seq))
    )
    return [(int(s), int(a)) for s, a in session.exec(stmt)]
