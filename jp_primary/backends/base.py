"""The storage protocol every backend implements.

Keys are relative, slash-separated paths chosen by the service (never by clients). Backends
normalise provider errors: a missing object is ``FileNotFoundError``, an unreachable or failing
store is ``jp_primary.errors.StorageUnavailable``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Protocol, runtime_checkable

from dotenv import dotenv_values
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from jp_primary.config import settings_file
from jp_primary.errors import PayloadTooLarge

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


class _Prefixed(PydanticBaseSettingsSource):
    """Every ``<prefix>*`` name of one source (the environment or the settings file), named
    without the prefix, known or not: unknown ones then fail validation (extra="forbid")."""

    def __init__(self, settings_cls: type[BaseSettings], names: Mapping[str, str | None]) -> None:
        super().__init__(settings_cls)
        prefix = str(self.config.get("env_prefix") or "").lower()
        self.values: dict[str, Any] = (
            {
                name.lower()[len(prefix) :]: value
                for name, value in names.items()
                if name.lower().startswith(prefix) and value is not None
            }
            if prefix
            else {}
        )

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.values)


class BackendOptions(BaseSettings):
    """Base of each backend's own options: settings read from the environment and from the
    ``JP_SETTINGS_FILE`` file under the backend's own prefix (a subclass sets
    ``model_config = SettingsConfigDict(env_prefix="JP_S3_")``); keyword arguments win, then
    the environment, then the file. An unknown name under the prefix, in either place, is an
    error at start-up: a typo must not fall back to a default silently."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = settings_file()
        from_file = dotenv_values(path) if path and os.path.isfile(path) else {}
        return (
            init_settings,
            _Prefixed(settings_cls, dict(os.environ)),
            _Prefixed(settings_cls, from_file),
        )


class Tally:
    """Size and sha256 of a stream as it passes, refusing more than ``max_size`` bytes: the one
    loop every backend's ``put_stream`` runs (``f.write(tally.add(chunk))``)."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.size = 0
        self._digest = hashlib.sha256()

    def add(self, chunk: bytes) -> bytes:
        self.size += len(chunk)
        if self.size > self.max_size:
            raise PayloadTooLarge(f"file exceeds the limit of {self.max_size} bytes")
        self._digest.update(chunk)
        return chunk

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def stored(self, key: str) -> StoredObject:
        return StoredObject(key=key, size=self.size, sha256=self.sha256)


@runtime_checkable
class StorageBackend(Protocol):
    name: ClassVar[str]
    # Its options; the registry builds them from the environment and the settings file.
    options_model: ClassVar[type[BackendOptions]]
    # True where ``publish`` is a cheap rename (filesystem, FTP); False where it would copy every
    # byte (object stores): there a committed file stays at the key it was written to.
    renames_cheaply: ClassVar[bool]
    # Capabilities the contract suite (jp_primary.testing.backends) checks instead of names:
    # ``stat`` reports the sha256 the store itself verified and kept;
    keeps_checksums: ClassVar[bool]
    # ``direct_upload`` and ``presigned_download`` give URLs (else they answer None);
    signs_urls: ClassVar[bool]
    # the store is a server that can be lost (not a local disk).
    remote: ClassVar[bool]

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

    def open_reader(self, key: str) -> AbstractContextManager[BinaryIO]:
        """Blocking (run it in a worker thread): a seekable, read-only file over the object that
        reads only what its reader asks for (``reader.RangeReader``: ranged GETs, REST + RETR; the
        file itself on local disks). What plugins read. A missing key is ``FileNotFoundError``."""
        ...

    def local_copy(self, key: str) -> AbstractContextManager[Path]:
        """Blocking: a local file with the object's bytes (the file itself where possible), for
        the plugins that need a file name (a C library opening the file itself)."""
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
