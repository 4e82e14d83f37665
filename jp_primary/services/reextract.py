"""Recompute derived values from the stored bytes when a plugin improves.

Each file is handled in its own transaction: its previous FILE values are replaced by the new
ones (with new seqs, so feeds see the change; the removed seqs are kept as tombstones that feeds
deliver as ``retracted``), its extraction problems and stored JobRecord are
updated. The plugin sees the file's own commit time, as at commit, so values stamped with it
(JDL attributes, sandbox entries without a usable mtime) keep their timestamps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio.to_thread
from sqlmodel import Session

from jp_primary.backends.base import StorageBackend
from jp_primary.db.repositories import files, jobs, values
from jp_primary.db.repositories import quarantine as retractions
from jp_primary.db.repositories.files import StoredFile
from jp_primary.db.session import Database
from jp_primary.errors import NotFound
from jp_primary.plugins.base import Extraction
from jp_primary.plugins.registry import PluginRegistry
from jp_primary.services.extraction import (
    ExtractionLimits,
    FileIdentity,
    error_count,
    error_dicts,
    extract_sync,
    file_values,
    store_job_record,
)


@dataclass(frozen=True)
class ReextractReport:
    files: int
    values: int
    files_with_errors: int


def _selected(session: Session, file_class: str | None, job_key: str | None) -> list[StoredFile]:
    job_id = None
    if job_key is not None:
        job = jobs.by_key(session, job_key)
        if job is None:
            raise NotFound(f"no job with key {job_key!r}")
        job_id = job.id
    return files.for_class(session, file_class, job_id)


def _replace(session: Session, row: StoredFile, extraction: Extraction) -> int:
    new = file_values(extraction.values, row.file_class, row.name, row.id)
    old = [v.seq for v in values.for_file(session, row.id)]
    values.remove_for_file(session, row.id)
    files.set_extraction_errors(session, row.id, error_dicts(extraction), error_count(extraction))
    store_job_record(session, row, extraction)
    seqs = values.append(session, row.job_id, new)
    if old:
        # Tombstones: feeds announce the removed seqs as `retracted` with the first new value,
        # or at a seq of their own when the file now yields nothing (docs/feeds.md).
        at = seqs[0] if seqs else values.allocate_seq(session, 1)
        retractions.retract(session, row.job_id, old, at, datetime.now(UTC), "reextract")
    return len(seqs)


class ReextractService:
    """Derives stored files' values again (``jp-primary reextract``)."""

    def __init__(
        self,
        db: Database,
        backend: StorageBackend,
        plugins: PluginRegistry,
        limits: ExtractionLimits | None = None,
    ) -> None:
        self.db = db
        self.backend = backend
        self.plugins = plugins
        self.limits = limits

    async def reextract_file(self, row: StoredFile) -> Extraction:
        """Derive one stored file's values again and store them in place of the old ones."""
        job = await self.db.run(lambda s: jobs.by_id(s, row.job_id))
        assert job is not None
        ident = FileIdentity(job.jobid, job.key, row.file_class, row.name)
        extraction = await anyio.to_thread.run_sync(
            extract_sync,
            self.plugins,
            self.backend,
            row.location,
            ident,
            row.committed_at,
            self.limits,
        )
        await self.db.run(lambda s: _replace(s, row, extraction))
        return extraction

    async def reextract(
        self,
        file_class: str | None = None,
        job_key: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> ReextractReport:
        canonical = self.plugins.resolve_class(file_class) if file_class else None
        rows = await self.db.run(lambda s: _selected(s, canonical, job_key))
        stored = with_errors = 0
        for done, row in enumerate(rows, start=1):
            extraction = await self.reextract_file(row)
            stored += len(extraction.values)
            with_errors += bool(extraction.errors)
            if progress is not None:
                progress(done, len(rows))
        return ReextractReport(len(rows), stored, with_errors)
