"""Everything the provenance views of one job read, loaded in one transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlmodel import Session

from jp_primary.auth.identity import Identity
from jp_primary.db.repositories import values
from jp_primary.db.repositories.jobs import JobInfo
from jp_primary.db.repositories.values import StoredValue
from jp_primary.db.session import Database
from jp_primary.services import jobs
from jp_primary.services.files import FileService, FileView


@dataclass(frozen=True)
class JobSnapshot:
    """A job as its owner may see it: the registration, the committed files, every value."""

    job: JobInfo
    files: list[FileView]
    values: list[StoredValue]

    def first(self, name: str) -> str | None:
        """The latest value of an attribute (names as stored, compared case-insensitively)."""
        wanted = name.lower()
        found = [v for v in self.values if v.name.lower() == wanted]
        return found[-1].value if found else None

    def all(self, name: str) -> list[StoredValue]:
        wanted = name.lower()
        return [v for v in self.values if v.name.lower() == wanted]


class ProvenanceService:
    def __init__(self, db: Database, files: FileService) -> None:
        self.db = db
        self.files = files

    async def snapshot(self, identity: Identity, key: str) -> JobSnapshot:
        def load(session: Session) -> JobSnapshot:
            job = jobs.readable_job(session, identity, key)
            return JobSnapshot(
                job, self.files.list_in(session, identity, key), _values(session, job)
            )

        return await self.db.run(load)

    def read(self, view: FileView) -> AsyncIterator[bytes]:
        """A stored file's bytes (for the crate), streamed from the storage backend."""
        return self.files.read(view.file, 0, None)


def _values(session: Session, job: JobInfo) -> list[StoredValue]:
    return values.for_job(session, job.id)
