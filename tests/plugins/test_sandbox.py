from __future__ import annotations

import gzip
import io
import tarfile
import tracemalloc
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pytest

from jp_primary.plugins import sandbox
from jp_primary.plugins.base import ExtractContext, Extraction
from jp_primary.plugins.sandbox import SandboxPlugin, detect_compression

ISB = "http://egee.cesnet.cz/en/Schema/JP/ISB"
OSB = "http://egee.cesnet.cz/en/Schema/JP/OSB"
COMMITTED = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
T0 = 1_700_000_000

Entry = tuple[str, bytes | None, int]  # (name, data or None for a directory, mtime)

ENTRIES: list[Entry] = [
    ("job", None, T0),
    ("job/run.sh", b"#!/bin/sh\necho hi\n", T0 + 1),
    ("job/data/input.txt", b"x" * 3000, T0 + 2),
]


def context(file_class: str = "isb") -> ExtractContext:
    return ExtractContext(
        jobid="https://lb.example.org:9000/abc",
        key="abc",
        file_class=file_class,
        file_name="",
        committed_at=COMMITTED,
    )


def write_tar(
    path: Path,
    entries: Iterable[Entry],
    mode: Literal["w", "w:gz", "w:bz2", "w:xz"] = "w",
    **options: object,
) -> Path:
    with tarfile.open(path, mode, **options) as archive:  # type: ignore[call-overload]
        for name, data, mtime in entries:
            info = tarfile.TarInfo(name)
            info.mtime = mtime
            if data is None:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return path


def listing(extraction: Extraction, namespace: str = ISB) -> dict[str, datetime]:
    return {v.value: v.timestamp for v in extraction.values if v.name == f"{namespace}:filename"}


def sizes(extraction: Extraction, namespace: str = ISB) -> dict[str, str]:
    prefix = f"{namespace}:size:"
    return {v.name[len(prefix) :]: v.value for v in extraction.values if v.name.startswith(prefix)}


@pytest.mark.parametrize(
    ("mode", "suffix", "compression"),
    [("w", "tar", ""), ("w:gz", "tar.gz", "gz"), ("w:bz2", "tbz", "bz2"), ("w:xz", "txz", "xz")],
)
def test_lists_every_entry_of_plain_and_compressed_archives(
    tmp_path: Path,
    mode: Literal["w", "w:gz", "w:bz2", "w:xz"],
    suffix: str,
    compression: str,
) -> None:
    path = write_tar(tmp_path / f"isb.{suffix}", ENTRIES, mode)
    assert detect_compression(path) == compression
    extraction = SandboxPlugin().extract(path, context())
    assert extraction.errors == []
    assert listing(extraction) == {
        "job": datetime.fromtimestamp(T0, UTC),
        "job/run.sh": datetime.fromtimestamp(T0 + 1, UTC),
        "job/data/input.txt": datetime.fromtimestamp(T0 + 2, UTC),
    }
    # Sizes only for regular files, stamped like their entry.
    assert sizes(extraction) == {"job/run.sh": "18", "job/data/input.txt": "3000"}
    stamps = {v.name: v.timestamp for v in extraction.values}
    assert stamps[f"{ISB}:size:job/run.sh"] == datetime.fromtimestamp(T0 + 1, UTC)


def test_osb_uses_the_osb_namespace(tmp_path: Path) -> None:
    path = write_tar(tmp_path / "osb.tar", ENTRIES[1:2])
    extraction = SandboxPlugin().extract(path, context("osb"))
    assert listing(extraction, OSB) == {"job/run.sh": datetime.fromtimestamp(T0 + 1, UTC)}
    assert all(v.name.startswith(OSB + ":") for v in extraction.values)


def test_symlinks_are_listed_without_size(tmp_path: Path) -> None:
    path = tmp_path / "links.tar"
    with tarfile.open(path, "w") as archive:
        link = tarfile.TarInfo("job/latest")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/shadow"
        link.mtime = T0
        archive.addfile(link)
    extraction = SandboxPlugin().extract(path, context())
    assert list(listing(extraction)) == ["job/latest"]
    assert sizes(extraction) == {}


def test_traversal_names_are_only_reported(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    marker = "jp-primary-traversal-marker-7f3a"
    names = [f"../../{marker}", f"/tmp/{marker}", f"a/../../{marker}", f"./{marker}"]
    path = write_tar(work / "evil.tar", [(name, b"pwned", T0) for name in names])
    before = sorted(p.name for p in tmp_path.rglob("*"))
    extraction = SandboxPlugin().extract(path, context())
    assert set(listing(extraction)) == set(names)  # verbatim, nothing normalised or resolved
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    for parent in (work, tmp_path, tmp_path.parent, Path("/tmp"), Path.cwd()):
        assert not (parent / marker).exists()


def test_non_utf8_names_become_storable_text(tmp_path: Path) -> None:
    raw_name = b"caf\xe9.txt".decode("utf-8", errors="surrogateescape")
    path = write_tar(
        tmp_path / "latin1.tar",
        [(raw_name, b"x", T0)],
        format=tarfile.GNU_FORMAT,
        encoding="utf-8",
        errors="surrogateescape",
    )
    extraction = SandboxPlugin().extract(path, context())
    assert list(listing(extraction)) == ["caf\ufffd.txt"]
    for value in extraction.values:
        value.value.encode("utf-8")  # no lone surrogates left
        value.name.encode("utf-8")


def test_impossible_mtime_falls_back_to_commit_time(tmp_path: Path) -> None:
    path = write_tar(tmp_path / "future.tar", [("f", b"x", 10**13)], format=tarfile.GNU_FORMAT)
    extraction = SandboxPlugin().extract(path, context())
    assert listing(extraction) == {"f": COMMITTED}
    [problem] = extraction.errors
    assert "impossible mtime" in problem.message


@pytest.mark.parametrize(
    "content",
    [b"just some text\n" * 100, bytes(range(256)) * 20, b"\x1f\x8bnot really gzip", b""],
)
def test_non_tar_files_are_a_problem(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage"
    path.write_bytes(content)
    extraction = SandboxPlugin().extract(path, context())
    assert extraction.values == []
    [problem] = extraction.errors
    assert problem.message.startswith("not a readable ")


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:xz"])
def test_truncated_archive_keeps_the_entries_read(
    tmp_path: Path, mode: Literal["w", "w:gz", "w:xz"]
) -> None:
    entries: list[Entry] = [
        (f"f{i}", bytes([i]) * 4096 + bytes(range(256)) * 8, T0 + i) for i in range(6)
    ]
    whole = write_tar(tmp_path / "whole", entries, mode).read_bytes()
    cut = tmp_path / "cut"
    cut.write_bytes(whole[: len(whole) // 2])
    extraction = SandboxPlugin().extract(cut, context())
    listed = list(listing(extraction))
    assert 1 <= len(listed) < 6
    assert listed == [f"f{i}" for i in range(len(listed))]
    [problem] = extraction.errors
    assert "truncated" in problem.message


def test_truncated_bz2_archive_is_reported_as_truncated(tmp_path: Path) -> None:
    whole = write_tar(tmp_path / "whole", ENTRIES, "w:bz2").read_bytes()
    cut = tmp_path / "cut"
    cut.write_bytes(whole[: len(whole) - 20])
    extraction = SandboxPlugin().extract(cut, context())
    [problem] = extraction.errors
    assert problem.message.startswith("bz2-compressed tar archive is truncated")


def test_corrupt_header_in_the_middle_is_reported(tmp_path: Path) -> None:
    data = bytearray(write_tar(tmp_path / "ok.tar", ENTRIES).read_bytes())
    second_header = 512  # "job" (a directory) has one header block and no data
    third_header = second_header + 512 + 512  # run.sh: header + one data block
    data[third_header : third_header + 100] = b"\xff" * 100
    path = tmp_path / "corrupt.tar"
    path.write_bytes(bytes(data))
    extraction = SandboxPlugin().extract(path, context())
    assert list(listing(extraction)) == ["job", "job/run.sh"]
    [problem] = extraction.errors
    assert "unreadable data after entry 2" in problem.message


def test_entry_count_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "MAX_ENTRIES", 5)
    path = write_tar(tmp_path / "many.tar", [(f"f{i}", b"", T0) for i in range(8)])
    extraction = SandboxPlugin().extract(path, context())
    assert list(listing(extraction)) == [f"f{i}" for i in range(5)]
    [problem] = extraction.errors
    assert "more than 5 entries" in problem.message


def test_unserved_class_is_a_problem(tmp_path: Path) -> None:
    path = write_tar(tmp_path / "x.tar", ENTRIES)
    extraction = SandboxPlugin().extract(path, context("jdl"))
    assert extraction.values == []
    assert "does not serve class 'jdl'" in extraction.errors[0].message


BIG = 60 * 1024 * 1024  # a member larger than 50 MB


def write_sparse_big_tar(path: Path) -> Path:
    """A plain tar with one 60 MB member of zeros, written as a sparse file (no 60 MB of I/O)."""
    big = tarfile.TarInfo("big/zeros.bin")
    big.size = BIG
    big.mtime = T0
    small = tarfile.TarInfo("after-big.txt")
    small.size = 2
    small.mtime = T0 + 5
    with path.open("wb") as stream:
        stream.write(big.tobuf(format=tarfile.PAX_FORMAT))
        stream.seek(BIG, io.SEEK_CUR)  # the member's data: a hole
        stream.write(small.tobuf(format=tarfile.PAX_FORMAT))
        stream.write(b"ok".ljust(tarfile.BLOCKSIZE, b"\0"))
        stream.write(b"\0" * tarfile.RECORDSIZE)
    return path


def write_big_gz_tar(path: Path) -> Path:
    """The same content as a gzip stream, compressed chunk by chunk."""
    with gzip.GzipFile(path, "wb", compresslevel=1) as stream:
        big = tarfile.TarInfo("big/zeros.bin")
        big.size = BIG
        big.mtime = T0
        stream.write(big.tobuf(format=tarfile.PAX_FORMAT))
        chunk = b"\0" * (1024 * 1024)
        for _ in range(BIG // len(chunk)):
            stream.write(chunk)
        small = tarfile.TarInfo("after-big.txt")
        small.size = 2
        small.mtime = T0 + 5
        stream.write(small.tobuf(format=tarfile.PAX_FORMAT))
        stream.write(b"ok".ljust(tarfile.BLOCKSIZE, b"\0"))
        stream.write(b"\0" * tarfile.RECORDSIZE)
    return path


@pytest.mark.parametrize("writer", [write_sparse_big_tar, write_big_gz_tar])
def test_big_member_is_listed_without_reading_it_into_memory(
    tmp_path: Path, writer: Callable[[Path], Path]
) -> None:
    path = writer(tmp_path / "big")
    tracemalloc.start()
    try:
        extraction = SandboxPlugin().extract(path, context())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert extraction.errors == []
    assert list(listing(extraction)) == ["big/zeros.bin", "after-big.txt"]
    assert sizes(extraction) == {"big/zeros.bin": str(BIG), "after-big.txt": "2"}
    # Streaming: the peak is a few buffers, far below the 60 MB member.
    assert peak < 8 * 1024 * 1024
