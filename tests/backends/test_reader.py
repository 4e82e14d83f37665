"""The ranged reader plugins read through: file semantics, and read-ahead that grows while reads
continue and shrinks after a seek (checked by counting what the fake store served)."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from jp_primary.backends.reader import MAX_FETCH, MIN_FETCH, RangeReader

MIB = 1024 * 1024


class Store:
    """Serves byte ranges of ``data`` and remembers each request."""

    def __init__(self, data: bytes, short_by: int = 0) -> None:
        self.data = data
        self.requests: list[tuple[int, int]] = []
        self.short_by = short_by  # serve this many bytes fewer than the data (a truncated object)

    def fetch(self, offset: int, length: int) -> bytes:
        self.requests.append((offset, length))
        end = min(offset + length, len(self.data) - self.short_by)
        return self.data[offset:end]


def reader_over(data: bytes, **store: int) -> tuple[RangeReader, Store]:
    fake = Store(data, **store)
    return RangeReader(len(data), fake.fetch), fake


def test_reads_seeks_and_lines_like_a_file() -> None:
    data = b"first line\nsecond\n" + os.urandom(100_000) + b"\nlast line without newline"
    reader, _ = reader_over(data)
    plain = io.BytesIO(data)
    assert reader.readline() == plain.readline()
    assert reader.readline(3) == plain.readline(3)
    assert reader.read(5000) == plain.read(5000)
    assert reader.seek(-10, os.SEEK_END) == plain.seek(-10, os.SEEK_END)
    assert reader.read() == plain.read()
    assert reader.read(10) == b""
    assert reader.seek(7) == 7
    assert reader.seek(3, os.SEEK_CUR) == 10
    assert reader.tell() == 10
    buffer = bytearray(20)
    assert reader.readinto(buffer) == 20
    assert bytes(buffer) == data[10:30]
    reader.seek(0)
    assert reader.read() == data
    with pytest.raises(OSError, match="negative"):
        reader.seek(-1)
    reader.close()
    with pytest.raises(ValueError, match="closed"):
        reader.read(1)


def test_sequential_reading_grows_the_requests() -> None:
    data = os.urandom(40 * MIB)
    reader, store = reader_over(data)
    got = bytearray()
    while chunk := reader.read(64 * 1024):
        got += chunk
    assert got == data
    sizes = [length for _, length in store.requests]
    assert sizes[0] == 64 * 1024  # what was asked, at least MIN_FETCH
    assert max(sizes) == MAX_FETCH
    assert len(store.requests) < 16  # 40 MiB in few requests, not 640 of 64 KiB
    assert reader.fetched == len(data)


def test_a_seek_elsewhere_starts_small_again() -> None:
    data = os.urandom(20 * MIB)
    reader, store = reader_over(data)
    reader.read(4 * MIB)
    reader.read(4 * MIB)  # read-ahead has grown
    reader.seek(15 * MIB)
    assert reader.read(100) == data[15 * MIB : 15 * MIB + 100]
    assert store.requests[-1] == (15 * MIB, MIN_FETCH)


def test_a_tar_listing_fetches_headers_only() -> None:
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:") as tar:
        for number in range(200):
            member = tarfile.TarInfo(f"d/f{number}")
            member.size = 100_000
            tar.addfile(member, io.BytesIO(bytes(member.size)))
    data = archive.getvalue()
    reader, store = reader_over(data)
    with tarfile.open(fileobj=reader, mode="r:") as tar:
        assert len(tar.getnames()) == 200
    assert reader.fetched < len(data) // 20
    assert len(store.requests) <= 202


def test_reading_through_short_seeks_trades_bytes_for_requests() -> None:
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:") as tar:
        for number in range(200):
            member = tarfile.TarInfo(f"d/f{number}")
            member.size = 100_000
            tar.addfile(member, io.BytesIO(bytes(member.size)))
    data = archive.getvalue()
    store = Store(data)
    reader = RangeReader(len(data), store.fetch, read_through=MIB)
    with tarfile.open(fileobj=reader, mode="r:") as tar:
        assert len(tar.getnames()) == 200
    assert len(store.requests) < 20  # one sequential pass in growing requests
    assert [offset for offset, _ in store.requests] == sorted(o for o, _ in store.requests)
    reader.seek(0)
    assert reader.read() == data  # what was read through is the archive's bytes


def test_an_object_shorter_than_announced_reads_short() -> None:
    data = os.urandom(10_000)
    reader, _ = reader_over(data, short_by=1000)
    assert reader.read() == data[:9000]
    assert reader.read(1) == b""
