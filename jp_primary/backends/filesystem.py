"""The embedded default backend: files under a local root directory.

Writes go to a temporary file in the destination directory, through sha256, fsync'ed, then
``os.replace``d into place and the directory fsync'ed: after a crash a key either holds its complete
bytes or does not exist. Temporary files of interrupted writes start with ``.tmp-`` and are
removed by ``jp-primary gc``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from jp_primary.backends.base import (
    BackendOptions,
    DirectUpload,
    ObjectInfo,
    StoredObject,
    Tally,
    iter_file,
)
from jp_primary.errors import StorageUnavailable

TMP_PREFIX = ".tmp-"


class FilesystemOptions(BackendOptions):
    """The root comes from ``JP_STORAGE_ROOT`` (default ``$JP_HOME/files``)."""

    model_config = SettingsConfigDict(env_prefix="JP_FILESYSTEM_")

    root: Path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FilesystemBackend:
    name: ClassVar[str] = "filesystem"
    renames_cheaply: ClassVar[bool] = True
    keeps_checksums: ClassVar[bool] = False
    signs_urls: ClassVar[bool] = False
    remote: ClassVar[bool] = False
    options_model: ClassVar[type[BackendOptions]] = FilesystemOptions

    def __init__(self, options: FilesystemOptions) -> None:
        self.root = options.root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """The file of ``key``; keys come from the service, but stay defensive about escapes."""
        rel = PurePosixPath(key)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise ValueError(f"invalid storage key {key!r}")
        return self.root.joinpath(*rel.parts)

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], *, max_size: int
    ) -> StoredObject:
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f"{TMP_PREFIX}{dest.name}.{secrets.token_hex(6)}")
        tally = Tally(max_size)
        try:
            # Plain writes in the event loop beat thread hand-offs for local disks (see bench/).
            with tmp.open("wb") as f:
                async for chunk in chunks:
                    f.write(tally.add(chunk))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, dest)
            _fsync_dir(dest.parent)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tally.stored(key)

    async def publish(self, src: str, dst: str) -> None:
        source, target = self.path(src), self.path(dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source, target)
        except FileNotFoundError:
            if not target.exists():
                raise
            return  # published by an earlier, interrupted attempt
        _fsync_dir(target.parent)

    async def read(
        self, key: str, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        for chunk in iter_file(self.path(key), offset, length):
            yield chunk
            await asyncio.sleep(0)  # let other requests run between chunks

    async def stat(self, key: str) -> ObjectInfo:
        st = self.path(key).stat()
        return ObjectInfo(
            key=key, size=st.st_size, modified=datetime.fromtimestamp(st.st_mtime, UTC)
        )

    async def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    async def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        base = self.path(prefix) if prefix else self.root
        if not base.is_dir():
            return
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                full = Path(dirpath) / name
                st = full.stat()
                yield ObjectInfo(
                    key=full.relative_to(self.root).as_posix(),
                    size=st.st_size,
                    modified=datetime.fromtimestamp(st.st_mtime, UTC),
                )

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        yield self.path(key)

    async def check(self) -> None:
        probe = self.root / f"{TMP_PREFIX}readyz"
        try:
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise StorageUnavailable(f"storage root is not writable: {exc.strerror}") from None

    def direct_upload(
        self, key: str, *, size: int | None, sha256: str | None, expires: datetime
    ) -> DirectUpload | None:
        return None

    def presigned_download(self, key: str, *, expires: datetime) -> str | None:
        return None

    async def close(self) -> None:
        return None
