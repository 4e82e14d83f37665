"""``jp-primary gc``: find (and with ``delete``, remove) stored objects nothing refers to.

Orphans arise from crashes between storing bytes and committing them, from interrupted writes
(temporary ``.tmp-`` objects) and from uploads that expired while the service was down. Objects
younger than ``min_age`` are never touched: an upload or commit may be about to refer to them,
and an object whose store reports no modification time is left alone for the same reason. The
database decides what is referenced; the backend is only listed and, with ``delete``, asked to
delete (this is the one place that deletes orphans).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from jp_primary.backends.base import ObjectInfo, StorageBackend
from jp_primary.db.repositories import files, uploads
from jp_primary.db.session import Database
from jp_primary.services import quarantine
from jp_primary.services.storage_keys import FILES_PREFIX, STAGING_PREFIX


@dataclass(frozen=True)
class GcReport:
    orphans: list[ObjectInfo]
    deleted: bool
    directories: list[str] = field(default_factory=list)  # empty staging directories

    @property
    def bytes(self) -> int:
        return sum(o.size for o in self.orphans)


async def find_orphans(
    backend: StorageBackend,
    referenced_keys: Collection[str],
    prefix: str,
    older_than: datetime,
) -> AsyncIterator[ObjectInfo]:
    """Objects under ``prefix`` that are not in ``referenced_keys`` and were last modified
    before ``older_than`` (a timezone-aware instant)."""
    if older_than.tzinfo is None:
        raise ValueError("older_than must be timezone-aware")
    async for info in backend.list(prefix):
        if info.key in referenced_keys or info.modified is None:
            continue
        if info.modified < older_than:
            yield info


def _referenced(session: Session) -> tuple[set[str], set[str]]:
    kept = files.all_locations(session) | quarantine.locations(session)
    return kept, uploads.in_progress_ids(session)


def _upload_of(key: str) -> str:
    return key[len(STAGING_PREFIX) :].split("/", 1)[0]


class GcService:
    """Finds (and with ``delete``, deletes) stored objects no file, quarantine entry or open
    upload refers to."""

    def __init__(self, db: Database, backend: StorageBackend) -> None:
        self.db = db
        self.backend = backend

    async def collect(
        self,
        *,
        delete: bool = False,
        min_age: timedelta = timedelta(hours=1),
        progress: Callable[[ObjectInfo], None] | None = None,
    ) -> GcReport:
        cutoff = datetime.now(UTC) - min_age
        locations, active_uploads = await self.db.run(_referenced)
        found: list[ObjectInfo] = []
        async for info in find_orphans(self.backend, locations, FILES_PREFIX, cutoff):
            found.append(info)
        async for info in find_orphans(self.backend, locations, STAGING_PREFIX, cutoff):
            if _upload_of(info.key) not in active_uploads:
                found.append(info)
        for info in found:
            if progress is not None:
                progress(info)
            if delete:
                await self.backend.delete(info.key)
        directories = await _empty_staging(self.backend, active_uploads, cutoff, delete=delete)
        return GcReport(found, delete, directories)


async def _empty_staging(
    backend: StorageBackend, active_uploads: set[str], cutoff: datetime, *, delete: bool
) -> list[str]:
    """Empty ``staging/<upload>/`` directories of uploads no longer open, on stores that have
    directories (the filesystem backend's ``empty_directories``; object stores have none)."""
    listing = getattr(backend, "empty_directories", None)
    if listing is None:
        return []
    found = []
    async for info in listing(STAGING_PREFIX):
        if _upload_of(info.key) in active_uploads or info.modified is None:
            continue
        if info.modified < cutoff:
            found.append(info.key)
            if delete:
                await backend.remove_directory(info.key)  # type: ignore[attr-defined]
    return found
