"""Listing and reading committed files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from jp_primary.auth.identity import Identity
from jp_primary.backends.base import StorageBackend
from jp_primary.db.repositories import files, identities
from jp_primary.db.repositories.files import StoredFile
from jp_primary.db.repositories.jobs import JobInfo
from jp_primary.db.session import Database
from jp_primary.errors import InvalidInput, NotFound, StorageUnavailable
from jp_primary.plugins.registry import PluginRegistry
from jp_primary.services import jobs

LINK_TTL = timedelta(minutes=10)


@dataclass(frozen=True)
class FileView:
    file: StoredFile
    uploader: str


@dataclass(frozen=True)
class JobView:
    """A job with its committed files."""

    job: JobInfo
    files: list[FileView]


class FileService:
    def __init__(self, db: Database, backend: StorageBackend, plugins: PluginRegistry) -> None:
        self.db = db
        self.backend = backend
        self.plugins = plugins

    async def job(self, identity: Identity, key: str) -> JobView:
        """A job the caller may read, with its committed files (one transaction)."""

        def load(session: Session) -> JobView:
            job = jobs.readable_job(session, identity, key)
            return JobView(job, self._views(session, job.id))

        return await self.db.run(load)

    async def job_by_jobid(self, identity: Identity, jobid: str) -> JobView:
        """As ``job``, looked up by the full jobid."""

        def load(session: Session) -> JobView:
            job = jobs.readable_job_by_jobid(session, identity, jobid)
            return JobView(job, self._views(session, job.id))

        return await self.db.run(load)

    async def list_files(self, identity: Identity, key: str) -> list[FileView]:
        return await self.db.run(lambda s: self.list_in(s, identity, key))

    def list_in(self, session: Session, identity: Identity, key: str) -> list[FileView]:
        job = jobs.readable_job(session, identity, key)
        return self._views(session, job.id)

    @staticmethod
    def _views(session: Session, job_id: int) -> list[FileView]:
        rows = files.for_job(session, job_id)
        who = identities.subjects(session, {r.uploader_id for r in rows})
        return [FileView(r, who[r.uploader_id]) for r in rows]

    async def find(self, identity: Identity, key: str, file_class: str, name: str) -> StoredFile:
        canonical = self.plugins.resolve_class(file_class)

        def lookup(session: Session) -> StoredFile:
            job = jobs.readable_job(session, identity, key)
            row = files.get(session, job.id, canonical, name)
            if row is None:
                raise NotFound(f"no file ({canonical}, {name!r}) stored for this job")
            return row

        return await self.db.run(lookup)

    def read(self, row: StoredFile, offset: int, length: int | None) -> AsyncIterator[bytes]:
        return self.backend.read(row.location, offset, length)

    def link(self, row: StoredFile) -> tuple[str, datetime]:
        expires = datetime.now(UTC) + LINK_TTL
        url = self.backend.presigned_download(row.location, expires=expires)
        if url is None:
            raise InvalidInput(f"the {self.backend.name} backend serves no direct links")
        return url, expires

    async def ensure_present(self, row: StoredFile) -> None:
        """A committed file whose bytes the store lost is an outage, not a missing file."""
        try:
            await self.backend.stat(row.location)
        except FileNotFoundError:
            raise StorageUnavailable("the stored bytes of this file cannot be read") from None
