"""Orphan detection of ``jp-primary gc`` over every backend: unreferenced and old enough,
nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from jp_primary.backends.base import StorageBackend
from jp_primary.services.gc import find_orphans

pytestmark = pytest.mark.anyio


async def one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def fill(backend: StorageBackend) -> None:
    for key in ["files/j1/lb", "files/j2/lb", "staging/u9", "other/x"]:
        await backend.put_stream(key, one(key.encode()), max_size=100)


async def test_unreferenced_old_objects_are_orphans(backend: StorageBackend) -> None:
    await fill(backend)
    later = datetime.now(UTC) + timedelta(minutes=1)
    found = [i.key async for i in find_orphans(backend, {"files/j1/lb"}, "files", later)]
    assert found == ["files/j2/lb"]
    everywhere = {i.key async for i in find_orphans(backend, {"files/j1/lb"}, "", later)}
    assert everywhere == {"files/j2/lb", "staging/u9", "other/x"}


async def test_recent_objects_are_never_orphans(backend: StorageBackend) -> None:
    await fill(backend)
    earlier = datetime.now(UTC) - timedelta(minutes=5)
    assert [i async for i in find_orphans(backend, set(), "", earlier)] == []


async def test_naive_cutoff_is_refused(backend: StorageBackend) -> None:
    naive = datetime(2030, 1, 1)  # noqa: DTZ001 (the point of the test)
    with pytest.raises(ValueError, match="timezone"):
        [i async for i in find_orphans(backend, set(), "", naive)]
