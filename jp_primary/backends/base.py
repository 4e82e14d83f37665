"""The storage protocol every backend implements.

Keys are relative, slash-separated paths chosen by the service (never by clients). Backends
normalise provider errors: a missing object is ``FileNotFoundError``, an unreachable or failing
store is ``jp_primary.errors.StorageUnavailable``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True)
class StoredObject:
    """What a completed write produced."""

    key: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    sha256: str | None = None  # known when the store kept a checksum
    modified: datetime | None = None


@dataclass(frozen=True)
class DirectUpload:
    """Where a client sends bytes itself, bypassing the API (presigned POST, one-time FTP URL)."""

    method: str  # "s3-post" | "ftp"
    url: str
    fields: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


class BackendOptions(BaseModel):
    """Base of each backend's own options model; unknown keys are rejected at start-up."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@runtime_checkable
class StorageBackend(Protocol):
    name: ClassVar[str]
    # True where ``publish`` is a cheap rename (filesystem, FTP); False where it would copy every
    # byte (object stores): there a committed file stays at the key it was written to.
    renames_cheaply: ClassVar[bool]

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], *, max_size: int
    ) -> StoredObject:
        """Store the stream under ``key`` atomically: it is visible whole or not at all.

        Bytes go chunk by chunk through sha256; memory stays flat. Past ``max_size`` raises
        ``PayloadTooLarge`` and leaves nothing behind.
        """
        ...

    async def publish(self, src: str, dst: str) -> None:
        """Move a complete object to its final key atomically (idempotent when src is gone
        and dst already holds it)."""
        ...

    def read(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """Stream ``length`` bytes (all when None) from ``offset``."""
        ...

    async def stat(self, key: str) -> ObjectInfo: ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""
        ...

    def list(self, prefix: str) -> AsyncIterator[ObjectInfo]: ...

    def local_copy(self, key: str) -> AbstractContextManager[Path]:
        """A local file with the object's bytes for plugins (the file itself where possible)."""
        ...

    async def check(self) -> None:
        """Raise ``StorageUnavailable`` when the store cannot be used."""
        ...

    def direct_upload(
        self, key: str, *, size: int | None, sha256: str | None, expires: datetime
    ) -> DirectUpload | None:
        """Credentials for a client to upload straight to ``key``; None when unsupported."""
        ...

    def presigned_download(self, key: str, *, expires: datetime) -> str | None:
        """A URL that serves the object without the service; None when unsupported."""
        ...

    async def close(self) -> None: ...


def iter_file(path: Path, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
    """Read a local file range chunk by chunk."""
    remaining = length
    with path.open("rb") as f:
        f.seek(offset)
        while remaining is None or remaining > 0:
            n = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
            chunk = f.read(n)
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk
