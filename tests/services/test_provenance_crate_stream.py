"""The RO-Crate zip is streamed: every piece handed on is about one storage chunk, never the
whole file, and the result is a valid zip (services/provenance/crate.py)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from jp_primary.services.provenance.crate import CrateEntry, stream_zip

CHUNK = 64 * 1024
CHUNKS = 64


async def _read(view: Any) -> AsyncIterator[bytes]:
    for index in range(CHUNKS):
        yield bytes([index]) * CHUNK


def test_the_zip_is_streamed_chunk_by_chunk() -> None:
    view = SimpleNamespace(file=SimpleNamespace(size=CHUNK * CHUNKS))
    entries = [CrateEntry("files/osb/osb", view), CrateEntry("job.jdl", None, b"[ a = 1; ]")]  # type: ignore[arg-type]

    async def collect() -> list[bytes]:
        return [c async for c in stream_zip({"@graph": []}, entries, _read, datetime.now(UTC))]

    pieces = asyncio.run(collect())
    assert max(len(p) for p in pieces) <= CHUNK + 1024  # one chunk and a header at most
    archive = zipfile.ZipFile(io.BytesIO(b"".join(pieces)))
    assert archive.namelist() == ["ro-crate-metadata.json", "files/osb/osb", "job.jdl"]
    assert archive.testzip() is None
    expected = b"".join(bytes([i]) * CHUNK for i in range(CHUNKS))
    assert (
        hashlib.sha256(archive.read("files/osb/osb")).digest() == hashlib.sha256(expected).digest()
    )
