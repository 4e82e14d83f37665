"""The JobRecord (JRA2 statistics record) of a job, derived from its L&B dump."""

from __future__ import annotations

import anyio.to_thread
from sqlmodel import Session

from jp_primary.auth.identity import Identity
from jp_primary.backends.base import StorageBackend
from jp_primary.db.models import FileRow
from jp_primary.db.repositories import files
from jp_primary.db.repositories.jobs import JobRecord
from jp_primary.db.session import Database
from jp_primary.errors import NotFound, StorageUnavailable
from jp_primary.plugins.lb.plugin import LBPlugin
from jp_primary.services import jobs


def _lb_dump(session: Session, identity: Identity, key: str) -> tuple[JobRecord, FileRow]:
    job = jobs.readable_job(session, identity, key)
    dumps = [f for f in files.for_job(session, job.id) if f.file_class == "lb"]
    if not dumps:
        raise NotFound("the job has no L&B dump, so no JobRecord can be derived")
    # The unnamed dump is the L&B server's own export; otherwise the latest one.
    unnamed = [f for f in dumps if f.name == ""]
    return job, (unnamed or dumps)[-1]


async def job_record(db: Database, backend: StorageBackend, identity: Identity, key: str) -> str:
    job, dump = await db.run(lambda s: _lb_dump(s, identity, key))

    def render() -> str:
        try:
            with backend.local_copy(dump.location) as path:
                return LBPlugin().job_record(path, job.jobid)
        except FileNotFoundError:
            raise StorageUnavailable("the stored L&B dump cannot be read") from None

    return await anyio.to_thread.run_sync(render)
