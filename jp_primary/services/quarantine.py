"""Jobid squatting (issue 14, defect 11): a trusted registration takes over a job that nobody
trusted registered for another owner, and what the squatter stored is quarantined.

The rule (docs/auth.md, "Jobid squatting"): a registration by a trusted service is
authoritative over one by anyone else. When a trusted service registers a jobid whose key is
already held by a registration no trusted service made, for another owner or another jobid, the
job passes to the trusted registration's owner. Everything stored in it before (files, derived
values, tags, the SYSTEM values of the old registration, uploads in progress) is removed from the
job and kept here for an admin for ``JP_QUARANTINE_RETENTION_DAYS``; the removed values' seqs
are recorded as retracted (``retracted_values``) so that feeds can announce them; a security
event is logged. Two trusted registrations for different owners still conflict (409).

The takeover is one database transaction (``take_over``). Committed bytes of the filesystem and
FTP backends live at keys derived from (job, class, name), which the rightful owner's own files
will use: right after the transaction ``secure`` moves them under ``quarantine/<id>/``. Until
then (and if the move fails) the quarantine entry names the original key, which ``gc`` keeps and
``purge`` deletes only while no committed file refers to it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from jp_primary.auth.identity import Identity
from jp_primary.backends.base import StorageBackend
from jp_primary.db.models import (
    AttributeValueRow,
    DoorGrantRow,
    FileRow,
    IdentityRow,
    QuarantineRow,
    RetractedValueRow,
    UploadRow,
)
from jp_primary.db.repositories import jobs, uploads
from jp_primary.db.repositories.jobs import JobInfo
from jp_primary.db.repositories.uploads import UploadState
from jp_primary.db.session import Database
from jp_primary.services.storage_keys import FILES_PREFIX
from jp_primary.timefmt import rfc3339

security_log = logging.getLogger("jp_primary.security")
log = logging.getLogger(__name__)
QUARANTINE_PREFIX = "quarantine/"
DEFAULT_RETENTION_DAYS = 90


@dataclass(frozen=True)
class Takeover:
    quarantine_id: int
    retracted: list[int]


def _subject(session: Session, identity_id: int | None) -> str | None:
    if identity_id is None:
        return None
    return session.exec(select(IdentityRow.subject).where(IdentityRow.id == identity_id)).first()


def _file_json(session: Session, row: FileRow) -> dict[str, Any]:
    return {
        "class": row.file_class,
        "name": row.name,
        "size": row.size,
        "sha256": row.sha256,
        "content_type": row.content_type,
        "uploader": _subject(session, row.uploader_id),
        "committed_at": rfc3339(row.committed_at),
        "location": row.location,
    }


def _value_json(session: Session, row: AttributeValueRow) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "name": row.name,
        "value": row.value,
        "origin": row.origin,
        "origin_detail": row.origin_detail,
        "timestamp": rfc3339(row.timestamp),
        "author": _subject(session, row.author_id),
    }


def take_over(
    session: Session,
    existing: JobInfo,
    identity: Identity,
    *,
    jobid: str,
    owner_id: int,
    registrar_id: int,
    owner: str,
    now: datetime,
    retention: timedelta,
) -> Takeover | None:
    """Pass ``existing`` (not trusted-registered) to a trusted registration, inside the caller's
    transaction. None when another trusted registration won the race (nothing written). The
    caller stores the new SYSTEM values; their first seq is where the retraction is announced
    (``announce``)."""
    if not jobs.take_over(
        session, existing.id, jobid=jobid, owner_id=owner_id, registrar_id=registrar_id, at=now
    ):
        return None
    job_id = existing.id
    file_rows = list(session.exec(select(FileRow).where(FileRow.job_id == job_id)))
    value_rows = list(
        session.exec(
            select(AttributeValueRow)
            .where(AttributeValueRow.job_id == job_id)
            .order_by(col(AttributeValueRow.seq))
        )
    )
    open_uploads = list(
        session.exec(
            select(UploadRow).where(
                UploadRow.job_id == job_id, col(UploadRow.state).in_(uploads.IN_PROGRESS)
            )
        )
    )
    entry = QuarantineRow(
        job_id=job_id,
        jobid=existing.jobid,
        squatter=existing.owner,
        squatter_registrar=existing.registered_by,
        squatter_registered_at=existing.registered_at,
        claimed_by=identity.subject,
        new_owner=owner,
        quarantined_at=now,
        retain_until=now + retention,
        files=json.dumps([_file_json(session, f) for f in file_rows]),
        attribute_values=json.dumps([_value_json(session, v) for v in value_rows]),
        uploads=json.dumps(
            [
                {"upload_id": u.id, "class": u.file_class, "name": u.name, "state": u.state}
                for u in open_uploads
            ]
        ),
    )
    session.add(entry)
    # The squatter's unfinished uploads end (their slots free for the owner); one-time door
    # credentials of them stop working; their staged bytes become orphans for gc.
    upload_ids = [u.id for u in open_uploads]
    for upload_id in upload_ids:
        uploads.end(session, upload_id, UploadState.ABORTED)
    if upload_ids:
        session.execute(delete(DoorGrantRow).where(col(DoorGrantRow.upload_id).in_(upload_ids)))
    session.execute(delete(AttributeValueRow).where(col(AttributeValueRow.job_id) == job_id))
    session.execute(delete(FileRow).where(col(FileRow.job_id) == job_id))
    session.flush()
    assert entry.id is not None
    retracted = [v.seq for v in value_rows]
    security_log.warning(
        "jobid squatting: trusted registration by %r of %r for owner %r took over job key %r "
        "registered by %r for owner %r; quarantined %d file(s), %d value(s), %d upload(s) as "
        "entry %d",
        identity.subject,
        jobid,
        owner,
        existing.key,
        existing.registered_by,
        existing.owner,
        len(file_rows),
        len(value_rows),
        len(open_uploads),
        entry.id,
    )
    return Takeover(entry.id, retracted)


def announce(session: Session, job_id: int, retracted: list[int], at_seq: int) -> None:
    """Record the takeover's retracted seqs, announced with the changes at ``at_seq``."""
    now = datetime.now(UTC)
    for seq in retracted:
        session.add(
            RetractedValueRow(
                seq=seq, job_id=job_id, announced_seq=at_seq, retracted_at=now, reason="takeover"
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


# ----- after the transaction: keep the bytes, list, purge -------------------------------------


def _referenced(session: Session, location: str) -> bool:
    return session.exec(select(FileRow.id).where(FileRow.location == location)).first() is not None


async def _is_referenced(db: Database, location: str) -> bool:
    return await db.run(lambda s: _referenced(s, location))


def entry_json(row: QuarantineRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "jobid": row.jobid,
        "squatter": row.squatter,
        "squatter_registrar": row.squatter_registrar,
        "squatter_registered_at": rfc3339(row.squatter_registered_at),
        "claimed_by": row.claimed_by,
        "new_owner": row.new_owner,
        "quarantined_at": rfc3339(row.quarantined_at),
        "retain_until": rfc3339(row.retain_until),
        "files": json.loads(row.files),
        "values": json.loads(row.attribute_values),
        "uploads": json.loads(row.uploads),
    }


def list_entries(session: Session) -> list[dict[str, Any]]:
    rows = session.exec(select(QuarantineRow).order_by(col(QuarantineRow.id)))
    return [entry_json(r) for r in rows]


def locations(session: Session) -> set[str]:
    """Every location a quarantine entry keeps (gc must not collect them)."""
    found: set[str] = set()
    for files in session.exec(select(QuarantineRow.files)):
        found.update(f["location"] for f in json.loads(files))
    return found


class QuarantineService:
    """The quarantine's own operations: listing, securing a takeover's bytes, purging (the entries
    themselves are written inside registrations, by ``take_over``)."""

    def __init__(self, db: Database, backend: StorageBackend) -> None:
        self.db = db
        self.backend = backend

    async def entries(self) -> list[dict[str, Any]]:
        return await self.db.run(list_entries)

    async def secure(self, quarantine_id: int) -> None:
        """Move a quarantined entry's committed bytes away from keys the owner's files will use."""
        entry = await self.db.run(lambda s: s.get(QuarantineRow, quarantine_id))
        if entry is None:
            return
        files = json.loads(entry.files)
        changed = False
        for i, item in enumerate(files):
            location = item["location"]
            if not location.startswith(FILES_PREFIX):
                continue  # object stores keep committed bytes at their unique staging key
            if await _is_referenced(self.db, location):
                continue  # a file of the new owner is already there: never move it
            target = f"{QUARANTINE_PREFIX}{quarantine_id}/{i}"
            try:
                await self.backend.publish(location, target)
            except Exception:
                log.exception("could not move quarantined %s to %s", location, target)
                continue
            item["location"] = target
            changed = True
        if changed:

            def save(session: Session) -> None:
                row = session.get(QuarantineRow, quarantine_id)
                if row is not None:
                    row.files = json.dumps(files)
                    session.add(row)

            await self.db.run(save)

    async def purge(self, now: datetime | None = None) -> int:
        """Delete the entries whose retention ended, with their bytes; the number deleted."""
        cutoff = now or datetime.now(UTC)

        def due(session: Session) -> list[tuple[int, list[str]]]:
            rows = session.exec(select(QuarantineRow).where(QuarantineRow.retain_until <= cutoff))
            return [(r.id or 0, [f["location"] for f in json.loads(r.files)]) for r in rows]

        done = 0
        for entry_id, held in await self.db.run(due):
            for location in held:
                if not await _is_referenced(self.db, location):
                    await self.backend.delete(location)

            def drop(session: Session, entry_id: int = entry_id) -> None:
                session.execute(delete(QuarantineRow).where(col(QuarantineRow.id) == entry_id))

            await self.db.run(drop)
            done += 1
        return done
