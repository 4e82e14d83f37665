"""The JobInfo (JRA2 statistics record) of a job, derived from its L&B dump (or, without one,
from its HTCondor user log mapped to L&B events).

The record is derived when the dump is committed (and again at re-extraction) and stored, so a
read never re-parses the dump. A dump committed before records were stored gets its record
derived on its first read, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import anyio.to_thread
from sqlmodel import Session

from jp_primary.auth.identity import Identity
from jp_primary.backends.base import StorageBackend
from jp_primary.db.repositories import files, records
from jp_primary.db.repositories.files import StoredFile
from jp_primary.db.repositories.jobs import JobInfo
from jp_primary.db.session import Database
from jp_primary.errors import NotFound, StorageUnavailable
from jp_primary.plugins.registry import PluginRegistry
from jp_primary.services import jobs
from jp_primary.services.extraction import FileIdentity, extract_sync, job_record_of


@dataclass(frozen=True)
class _Stored:
    job: JobInfo
    dump: StoredFile
    derived: bool  # a record (or the reason for none) is stored
    xml: str | None
    detail: str | None


def _lb_dump(session: Session, identity: Identity, key: str) -> _Stored:
    job = jobs.readable_job(session, identity, key)
    stored = files.for_job(session, job.id)
    # An L&B dump is the job's own record; a mapped HTCondor user log stands in without one.
    dumps = [f for f in stored if f.file_class == "lb"] or [
        f for f in stored if f.file_class == "condor-log"
    ]
    if not dumps:
        raise NotFound(
            "the job has no L&B dump (or HTCondor user log), so no JobInfo can be derived;"
            " upload one"
        )
    # The unnamed dump is the L&B server's own export; otherwise the latest one.
    unnamed = [f for f in dumps if f.name == ""]
    dump = (unnamed or dumps)[-1]
    row = records.get(session, dump.id)
    if row is None:
        return _Stored(job, dump, False, None, None)
    return _Stored(job, dump, True, row.xml, row.detail)


class RecordService:
    """Reads (and, for dumps committed before records were stored, derives once) JobRecords."""

    def __init__(self, db: Database, backend: StorageBackend, plugins: PluginRegistry) -> None:
        self.db = db
        self.backend = backend
        self.plugins = plugins

    async def job_record(self, identity: Identity, key: str) -> str:
        """The stored JobRecord XML; ``NotFound`` saying why when the dump yields none."""
        stored = await self.db.run(lambda s: _lb_dump(s, identity, key))
        xml, detail = stored.xml, stored.detail
        if not stored.derived:
            xml, detail = await self._derive_once(stored.job, stored.dump)
        if xml is None:
            raise NotFound(f"{detail}; upload a dump holding this job's events under another name")
        return xml

    async def _derive_once(self, job: JobInfo, dump: StoredFile) -> tuple[str | None, str]:
        try:
            await self.backend.stat(dump.location)
        except FileNotFoundError:
            raise StorageUnavailable("the stored L&B dump cannot be read") from None
        ident = FileIdentity(job.jobid, job.key, dump.file_class, dump.name)
        extraction = await anyio.to_thread.run_sync(
            extract_sync, self.plugins, self.backend, dump.location, ident, dump.committed_at
        )
        xml, detail = job_record_of(extraction, dump.file_class, dump.name)
        file_id = dump.id
        await self.db.run(lambda s: records.put(s, file_id, xml, detail or None, datetime.now(UTC)))
        return xml, detail
