"""The embedded default backend: files under a local root directory.

Writes go to a temporary file in the destination directory, through sha256, fsync'ed, then
``os.replace``d into place and the directory fsync'ed: after a crash a key either holds its complete
bytes or does not exist. Temporary files of interrupted writes start with ``.tmp-`` and are
removed by ``jp-primary gc``. A directory emptied by ``delete`` or ``publish`` is removed with
its last entry (below the top level); ``empty_directories``/``remove_directory`` let gc find and
remove the ones an interrupted process left.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO, ClassVar

import anyio.to_thread
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


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_file(source: Path, target: Path, *, sync_source: bool = False) -> None:
    """Move a complete file to ``target`` atomically and durably (the directory entry fsync'ed;
    with ``sync_source`` the file's bytes first, for writers that did not fsync them). Idempotent:
    when ``source`` is gone and ``target`` exists, an earlier attempt has published it."""
    if sync_source:
        try:
            _fsync(source)
        except FileNotFoundError:
            if target.exists():
                return  # published by an earlier attempt
            raise
    for attempt in (1, 2):
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source, target)
            break
        except FileNotFoundError:
            if target.exists() and not source.exists():
                return
            if attempt == 2 or not source.exists():
                raise
            # The target's directory was pruned (its last entry deleted) between mkdir and
            # replace: make it again.
    _fsync(target.parent)


def _seal(written: BinaryIO, tmp: Path, dest: Path) -> None:
    """Make a written temporary file durable under its final name (file, then directory)."""
    written.flush()
    os.fsync(written.fileno())
    os.replace(tmp, dest)
    _fsync(dest.parent)


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
            # Plain writes in the event loop beat thread hand-offs for local disks (see bench/);
            # the fsyncs wait for the disk, so they go to a thread: the loop serves other
            # requests meanwhile.
            with tmp.open("wb") as f:
                async for chunk in chunks:
                    f.write(tally.add(chunk))
                await anyio.to_thread.run_sync(_seal, f, tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tally.stored(key)

    async def publish(self, src: str, dst: str) -> None:
        source = self.path(src)
        # In a thread: the directory fsync waits for the disk.
        await anyio.to_thread.run_sync(publish_file, source, self.path(dst))
        self._prune(source.parent)

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
        """Remove ``key``, and its directory when that is left empty (as in object stores, a
        directory lives only while it holds something; ``publish`` does the same for the source's
        directory); top-level directories stay."""
        path = self.path(key)
        path.unlink(missing_ok=True)
        self._prune(path.parent)

    def _prune(self, directory: Path) -> None:
        if directory.parent != self.root and directory != self.root:
            with contextlib.suppress(OSError):  # not empty, or already gone
                directory.rmdir()

    async def empty_directories(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        """Empty directories under ``prefix`` (keys ending in ``/``), for ``jp-primary gc``:
        what interrupted writes or older versions left behind. Not part of the protocol."""
        base = self.path(prefix) if prefix else self.root
        if not base.is_dir():
            return
        for dirpath, dirs, files in os.walk(base):
            if not dirs and not files and Path(dirpath) != base:
                full = Path(dirpath)
                yield ObjectInfo(
                    key=full.relative_to(self.root).as_posix() + "/",
                    size=0,
                    modified=datetime.fromtimestamp(full.stat().st_mtime, UTC),
                )

    async def remove_directory(self, key: str) -> None:
        """Remove the empty directory ``key`` (a key from ``empty_directories``)."""
        with contextlib.suppress(FileNotFoundError, OSError):
            self.path(key.rstrip("/")).rmdir()

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
    def open_reader(self, key: str) -> Iterator[BinaryIO]:
        with self.path(key).open("rb") as f:
            yield f

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
