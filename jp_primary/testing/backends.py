"""The storage backend contract, as a test suite any backend runs (as fsspec ships its abstract
tests): jp_primary's own backends run it in ``tests/backends``, and a third-party backend
registered under the ``jp_primary.backends`` entry-point group runs it in three lines::

    from jp_primary.testing.backends import BackendContract

    class TestMyStore(BackendContract):
        backend_name = "mystore"  # its entry-point name
        def options(self, area, tmp_path): return {"url": f"mystore://127.0.0.1:9000/{area}"}

``options`` gives the backend's options (what its ``options_model`` validates) for a fresh,
empty ``area`` (a new name for every test, under which the backend must keep its keys) or a
fresh local ``tmp_path``. A subclass may instead override the ``backend`` fixture itself.
Differences between stores are capability flags of the backend class (``keeps_checksums``,
``signs_urls``, ``remote``), never names. ``UnavailableContract`` adds the "store is gone" test;
it needs a ``stopped_backend`` fixture. Needs pytest and anyio (jp_primary's ``test`` extra).
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import tarfile
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import anyio.to_thread
import pytest

from jp_primary.backends.base import ObjectInfo, StorageBackend
from jp_primary.backends.registry import load
from jp_primary.errors import PayloadTooLarge, StorageUnavailable

MIB = 1024 * 1024
LIMIT = 64 * MIB


async def stream(data: bytes, chunk: int = 256 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), chunk):
        yield data[start : start + chunk]


async def read_all(
    store: StorageBackend, key: str, offset: int = 0, length: int | None = None
) -> bytes:
    return b"".join([chunk async for chunk in store.read(key, offset, length)])


async def listing(store: StorageBackend, prefix: str = "") -> list[ObjectInfo]:
    return sorted([info async for info in store.list(prefix)], key=lambda info: info.key)


def create(name: str, options: Mapping[str, Any]) -> StorageBackend:
    """The backend registered as ``name``, with exactly ``options`` (no environment)."""
    cls = load(name)
    backend: StorageBackend = cls(cls.options_model.model_validate(dict(options)))  # type: ignore[call-arg]
    return backend


@pytest.mark.anyio
class BackendContract:
    """What every storage backend promises (see ``jp_primary.backends.base.StorageBackend``)."""

    backend_name: ClassVar[str] = ""

    def options(self, area: str, tmp_path: Path) -> Mapping[str, Any]:
        raise NotImplementedError("give the backend's options, or override the backend fixture")

    @pytest.fixture
    async def backend(self, tmp_path: Path) -> AsyncIterator[StorageBackend]:
        store = create(self.backend_name, self.options(f"t-{secrets.token_hex(4)}", tmp_path))
        yield store
        await store.close()

    @pytest.mark.parametrize("size", [0, 1000, 20 * MIB], ids=["empty", "small", "multipart"])
    async def test_round_trip_with_sha256(self, backend: StorageBackend, size: int) -> None:
        data = os.urandom(size)
        stored = await backend.put_stream("jobs/ab/file.bin", stream(data), max_size=LIMIT)
        assert stored.size == size
        assert stored.sha256 == hashlib.sha256(data).hexdigest()
        assert await read_all(backend, "jobs/ab/file.bin") == data
        info = await backend.stat("jobs/ab/file.bin")
        assert info.size == size
        assert info.sha256 in (None, stored.sha256)  # when the store keeps one, the right one

    async def test_small_put_keeps_checksum_where_the_store_can(
        self, backend: StorageBackend
    ) -> None:
        data = b"checksummed bytes"
        await backend.put_stream("c/one", stream(data), max_size=LIMIT)
        info = await backend.stat("c/one")
        expected = hashlib.sha256(data).hexdigest() if backend.keeps_checksums else None
        assert info.sha256 == expected

    async def test_range_reads(self, backend: StorageBackend) -> None:
        data = bytes(range(256)) * 40
        await backend.put_stream("r/data", stream(data, 1000), max_size=LIMIT)
        assert await read_all(backend, "r/data", 10, 20) == data[10:30]
        assert await read_all(backend, "r/data", 5000) == data[5000:]
        assert await read_all(backend, "r/data", 0, 1) == data[:1]
        assert await read_all(backend, "r/data", len(data) - 3, 100) == data[-3:]
        assert await read_all(backend, "r/data", len(data)) == b""
        assert await read_all(backend, "r/data", 3, 0) == b""

    async def test_missing_object(self, backend: StorageBackend) -> None:
        with pytest.raises(FileNotFoundError):
            await backend.stat("no/such/key")
        with pytest.raises(FileNotFoundError):
            await read_all(backend, "no/such/key")
        await backend.delete("no/such/key")  # deleting what is not there is fine

    async def test_stat_delete_list(self, backend: StorageBackend) -> None:
        for key, body in [("a/x/1", b"1"), ("a/x/2", b"22"), ("a/y/3", b"333"), ("ab/4", b"4444")]:
            await backend.put_stream(key, stream(body), max_size=LIMIT)
        assert [(i.key, i.size) for i in await listing(backend, "a")] == [
            ("a/x/1", 1),
            ("a/x/2", 2),
            ("a/y/3", 3),
        ]
        assert [i.key for i in await listing(backend)] == ["a/x/1", "a/x/2", "a/y/3", "ab/4"]
        assert all(i.modified is not None and i.modified.tzinfo for i in await listing(backend))
        await backend.delete("a/x/2")
        with pytest.raises(FileNotFoundError):
            await backend.stat("a/x/2")
        assert [i.key for i in await listing(backend, "a/x")] == ["a/x/1"]
        assert await listing(backend, "nothing/here") == []

    async def test_publish_is_atomic_and_idempotent(self, backend: StorageBackend) -> None:
        data = os.urandom(5000)
        await backend.put_stream("staging/u1", stream(data), max_size=LIMIT)
        await backend.publish("staging/u1", "files/j1/lb")
        assert await read_all(backend, "files/j1/lb") == data
        published = await backend.stat("files/j1/lb")
        assert published.size == len(data)
        if backend.keeps_checksums:  # a server-side copy keeps the checksum the store verified
            assert published.sha256 == hashlib.sha256(data).hexdigest()
        with pytest.raises(FileNotFoundError):
            await backend.stat("staging/u1")
        await backend.publish("staging/u1", "files/j1/lb")  # a repeated, interrupted commit
        assert await read_all(backend, "files/j1/lb") == data
        with pytest.raises(FileNotFoundError):
            await backend.publish("staging/never", "files/j1/other")

    @pytest.mark.parametrize("size", [3 * MIB, 20 * MIB], ids=["one-part", "multipart"])
    async def test_oversize_leaves_nothing(self, backend: StorageBackend, size: int) -> None:
        with pytest.raises(PayloadTooLarge):
            await backend.put_stream("big/file", stream(os.urandom(size), MIB), max_size=size - 1)
        assert await listing(backend) == []

    async def test_failing_stream_leaves_nothing(self, backend: StorageBackend) -> None:
        async def broken() -> AsyncIterator[bytes]:
            yield os.urandom(9 * MIB)  # past one S3 part, so a multipart upload is under way
            raise ConnectionResetError("client went away")

        with pytest.raises(ConnectionResetError):
            await backend.put_stream("cut/file", broken(), max_size=LIMIT)
        assert await listing(backend) == []

    async def test_many_files_in_one_directory_tree(self, backend: StorageBackend) -> None:
        """Writes into directories made earlier (and cached by stores that make them)."""
        for n in range(5):
            await backend.put_stream(f"staging/u{n}/data", stream(b"x" * n), max_size=LIMIT)
            await backend.publish(f"staging/u{n}/data", f"files/j/{n}")
        assert [i.size for i in await listing(backend, "files")] == [0, 1, 2, 3, 4]

    async def test_local_copy(self, backend: StorageBackend) -> None:
        data = os.urandom(3 * MIB + 7)
        await backend.put_stream("lc/file", stream(data), max_size=LIMIT)
        with backend.local_copy("lc/file") as path:
            assert path.read_bytes() == data
        with pytest.raises(FileNotFoundError), backend.local_copy("lc/missing") as path:
            path.read_bytes()

    async def test_open_reader_reads_and_seeks(self, backend: StorageBackend) -> None:
        data = os.urandom(3 * MIB) + b"line one\nline two\n" + os.urandom(5000)
        await backend.put_stream("or/file", stream(data), max_size=LIMIT)

        def use() -> None:
            with backend.open_reader("or/file") as reader:
                assert reader.read(10) == data[:10]
                reader.seek(3 * MIB)
                assert reader.readline() == b"line one\n"
                assert reader.readline(4) == b"line"
                assert reader.seek(-100, os.SEEK_END) == len(data) - 100
                assert reader.read() == data[-100:]
                assert reader.read(1) == b""
                reader.seek(1000)
                assert reader.tell() == 1000
                assert reader.read(2 * MIB) == data[1000 : 1000 + 2 * MIB]
                reader.seek(0)
                assert reader.read() == data

        await anyio.to_thread.run_sync(use)
        with pytest.raises(FileNotFoundError):
            await anyio.to_thread.run_sync(lambda: backend.open_reader("or/missing").__enter__())

    async def test_tar_listing_reads_headers_only(self, backend: StorageBackend) -> None:
        """A tar listing through ``open_reader`` seeks over the members: a remote store serves
        a small fraction of the archive (``RangeReader.fetched``)."""
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w:") as tar:
            for number in range(24):
                member = tarfile.TarInfo(f"out/file-{number}")
                member.size = 512 * 1024 + number  # farther apart than FTP's read-through
                tar.addfile(member, io.BytesIO(os.urandom(member.size)))
        data = archive.getvalue()
        await backend.put_stream("or/sandbox.tar", stream(data, MIB), max_size=LIMIT)

        def list_names() -> tuple[list[str], int | None]:
            with (
                backend.open_reader("or/sandbox.tar") as reader,
                tarfile.open(fileobj=reader, mode="r:") as tar,
            ):
                names = [member.name for member in tar]
                return names, getattr(reader, "fetched", None)

        names, fetched = await anyio.to_thread.run_sync(list_names)
        assert names == [f"out/file-{number}" for number in range(24)]
        if backend.remote:
            assert fetched is not None, "a remote backend's reader counts what it fetched"
            assert fetched < len(data) // 20, f"{fetched} of {len(data)} bytes fetched"

    async def test_check_and_urls_as_declared(self, backend: StorageBackend) -> None:
        await backend.check()
        expires = datetime.now(UTC) + timedelta(minutes=5)
        await backend.put_stream("u/k", stream(b"k"), max_size=LIMIT)
        link = backend.presigned_download("u/k", expires=expires)
        direct = backend.direct_upload("u/new", size=1, sha256=None, expires=expires)
        if backend.signs_urls:
            assert link is not None
            assert direct is not None
        else:
            assert link is None
            assert direct is None


@pytest.mark.anyio
class UnavailableContract:
    """A store that is really gone is reported as ``StorageUnavailable``: ``check`` always, and
    every operation of a remote store. Provide a ``stopped_backend`` fixture."""

    async def test_stopped_store_is_unavailable(self, stopped_backend: StorageBackend) -> None:
        with pytest.raises(StorageUnavailable):
            await stopped_backend.check()
        if not stopped_backend.remote:
            return  # a local disk has no "server" to lose; check() is how it reports trouble
        with pytest.raises(StorageUnavailable):
            await stopped_backend.stat("k")
        with pytest.raises(StorageUnavailable):
            await read_all(stopped_backend, "k")
        with pytest.raises(StorageUnavailable):
            await stopped_backend.put_stream("k", stream(b"data"), max_size=LIMIT)
        with pytest.raises(StorageUnavailable):
            await listing(stopped_backend)
