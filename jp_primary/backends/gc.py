"""Finding stored objects nothing refers to: interrupted writes (``.tmp-`` names), expired
uploads' staging objects, files whose database rows were never committed.

The database decides what is referenced; this module only compares. An object younger than the
cut-off is never an orphan, because an upload or commit may be about to refer to it, and an
object whose store reports no modification time is left alone for the same reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from datetime import datetime

from jp_primary.backends.base import ObjectInfo, StorageBackend


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


async def delete_orphans(
    backend: StorageBackend,
    referenced_keys: Collection[str],
    prefix: str,
    older_than: datetime,
    *,
    dry_run: bool = False,
) -> list[ObjectInfo]:
    """Delete what ``find_orphans`` finds (unless ``dry_run``) and return it, for the report of
    ``jp-primary gc``. Listing completes first, so deletions do not disturb the listing."""
    orphans = [info async for info in find_orphans(backend, referenced_keys, prefix, older_than)]
    if not dry_run:
        for info in orphans:
            await backend.delete(info.key)
    return orphans
