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

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlmodel import Session

from jp_primary.auth.identity import Identity
from jp_primary.backends.base import StorageBackend
from jp_primary.db.repositories import door_grants, files, identities, jobs, uploads, values
from jp_primary.db.repositories import quarantine as entries_repo
from jp_primary.db.repositories.files import StoredFile
from jp_primary.db.repositories.jobs import JobInfo
from jp_primary.db.repositories.quarantine import NewEntry, QuarantineEntry
from jp_primary.db.repositories.uploads import UploadState
from jp_primary.db.repositories.values import StoredValue
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


def _file_json(row: StoredFile, who: dict[int, str]) -> dict[str, Any]:
    return {
        "class": row.file_class,
        "name": row.name,
        "size": row.size,
        "sha256": row.sha256,
        "content_type": row.content_type,
        "uploader": who.get(row.uploader_id),
        "committed_at": rfc3339(row.committed_at),
        "location": row.location,
    }


def _value_json(row: StoredValue) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "name": row.name,
        "value": row.value,
        "origin": row.origin,
        "origin_detail": row.origin_detail,
        "timestamp": rfc3339(row.timestamp),
        "author": row.author,
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
    file_rows = files.for_job(session, job_id)
    value_rows = values.for_job(session, job_id)
    open_uploads = uploads.in_progress_for_job(session, job_id)
    who = identities.subjects(session, {f.uploader_id for f in file_rows})
    entry = NewEntry(
        job_id=job_id,
        jobid=existing.jobid,
        squatter=existing.owner,
        squatter_registrar=existing.registered_by,
        squatter_registered_at=existing.registered_at,
        claimed_by=identity.subject,
        new_owner=owner,
        quarantined_at=now,
        retain_until=now + retention,
        files=[_file_json(f, who) for f in file_rows],
        attribute_values=[_value_json(v) for v in value_rows],
        uploads=[
            {"upload_id": u.id, "class": u.file_class, "name": u.name, "state": u.state}
            for u in open_uploads
        ],
    )
    entry_id = entries_repo.add(session, entry)
    # The squatter's unfinished uploads end (their slots free for the owner); one-time door
    # credentials of them stop working; their staged bytes become orphans for gc.
    upload_ids = [u.id for u in open_uploads]
    for upload_id in upload_ids:
        uploads.end(session, upload_id, UploadState.ABORTED)
    door_grants.revoke_for_uploads(session, upload_ids)
    values.remove_for_job(session, job_id)
    files.remove_for_job(session, job_id)
    session.flush()
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
        entry_id,
    )
    return Takeover(entry_id, retracted)


def announce(session: Session, job_id: int, retracted: list[int], at_seq: int) -> None:
    """Record the takeover's retracted seqs, announced with the changes at ``at_seq``."""
    entries_repo.retract(session, job_id, retracted, at_seq, datetime.now(UTC), "takeover")


def retracted_for_job(session: Session, job_id: int) -> list[tuple[int, int]]:
    """(retracted seq, announced at seq) of one job, oldest first."""
    return entries_repo.retracted_for_job(session, job_id)


# ----- after the transaction: keep the bytes, list, purge -------------------------------------


async def _is_referenced(db: Database, location: str) -> bool:
    return await db.run(lambda s: files.is_referenced(s, location))


def entry_json(entry: QuarantineEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "jobid": entry.jobid,
        "squatter": entry.squatter,
        "squatter_registrar": entry.squatter_registrar,
        "squatter_registered_at": rfc3339(entry.squatter_registered_at),
        "claimed_by": entry.claimed_by,
        "new_owner": entry.new_owner,
        "quarantined_at": rfc3339(entry.quarantined_at),
        "retain_until": rfc3339(entry.retain_until),
        "files": entry.files,
        "values": entry.attribute_values,
        "uploads": entry.uploads,
    }


def list_entries(session: Session) -> list[dict[str, Any]]:
    return [entry_json(e) for e in entries_repo.entries(session)]


def locations(session: Session) -> set[str]:
    """Every location a quarantine entry keeps (gc must not collect them)."""
    return entries_repo.locations(session)


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
        entry = await self.db.run(lambda s: entries_repo.get(s, quarantine_id))
        if entry is None:
            return
        held = [dict(item) for item in entry.files]
        changed = False
        for i, item in enumerate(held):
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
            await self.db.run(lambda s: entries_repo.set_files(s, quarantine_id, held))

    async def purge(self, now: datetime | None = None) -> int:
        """Delete the entries whose retention ended, with their bytes; the number deleted."""
        cutoff = now or datetime.now(UTC)
        done = 0
        for entry in await self.db.run(lambda s: entries_repo.due(s, cutoff)):
            for item in entry.files:
                if not await _is_referenced(self.db, item["location"]):
                    await self.backend.delete(item["location"])
            await self.db.run(partial(entries_repo.remove, entry_id=entry.id))
            done += 1
        return done
