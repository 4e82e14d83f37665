"""The ``isb`` / ``osb`` classes: a job's input or output sandbox as a tar archive.

Derived values (``<NS>`` is ``http://egee.cesnet.cz/en/Schema/JP/ISB`` or ``.../OSB``):

* ``<NS>:filename`` — one value per archive entry (files, directories, links), the entry's path
  exactly as recorded in the archive; timestamp = the entry's mtime (as in the original JP);
* ``<NS>:size:<path>`` — for each regular file, its size in bytes as a decimal string; same
  timestamp. (The original declared ``<NS>:content:<path>`` for the bytes themselves; a size is
  what an index can use, the bytes stay downloadable from the file.)

The archive may be plain or gzip / bzip2 / xz compressed (recognised by its magic bytes). It is
only ever listed: headers are read in order and member data is skipped, never extracted, so names
like ``../../etc/passwd`` are just names and memory does not grow with the archive's size. A
damaged archive keeps the entries read before the damage and reports the problem.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import tarfile
from datetime import UTC, datetime
from io import BufferedIOBase
from pathlib import Path
from typing import ClassVar

from jp_primary.attributes.names import JP_ISB, JP_OSB
from jp_primary.plugins.base import DerivedValue, ExtractContext, Extraction, ExtractionProblem

NAMESPACE_BY_CLASS = {"isb": JP_ISB, "osb": JP_OSB}
# Bounds the values one archive can add (two per entry); the rest is reported, not listed.
MAX_ENTRIES = 100_000
_CHUNK = 1024 * 1024
# tarfile reads a pax or GNU long-name header whole; a real one holds a few paths.
MAX_EXTENDED_HEADER = 1024 * 1024

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gz"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
)


class SandboxPlugin:
    name: ClassVar[str] = "sandbox"
    classes: ClassVar[tuple[str, ...]] = ("isb", "osb")
    aliases: ClassVar[dict[str, str]] = {
        "urn:org.glite.jp.primary:isb": "isb",
        "urn:org.glite.jp.primary:osb": "osb",
    }
    namespaces: ClassVar[tuple[str, ...]] = (JP_ISB, JP_OSB)
    # ``<ns>:size:<entry name>`` is the entry's size in bytes; file names are strings.
    attribute_types: ClassVar[dict[str, str]] = {"isb:size:*": "integer", "osb:size:*": "integer"}

    def extract(self, path: Path, context: ExtractContext) -> Extraction:
        extraction = Extraction()
        namespace = NAMESPACE_BY_CLASS.get(context.file_class)
        if namespace is None:
            message = f"the sandbox plugin does not serve class {context.file_class!r}"
            extraction.errors.append(ExtractionProblem(message))
            return extraction
        compression = detect_compression(path)
        try:
            _list_archive(path, compression, namespace, context, extraction)
        except (tarfile.TarError, EOFError, OSError, lzma.LZMAError) as exc:
            extraction.errors.append(ExtractionProblem(_damage_message(compression, exc)))
        return extraction


def detect_compression(path: Path) -> str:
    """``gz``, ``bz2``, ``xz`` or ``""`` (plain tar, or not an archive at all)."""
    with path.open("rb") as stream:
        head = stream.read(6)
    return next((kind for magic, kind in _MAGIC if head.startswith(magic)), "")


def _list_archive(
    path: Path, compression: str, namespace: str, context: ExtractContext, out: Extraction
) -> None:
    plain_size = path.stat().st_size if not compression else None
    with (
        _open_decompressed(path, compression) as stream,
        # errors="replace": names that are not UTF-8 still become storable text.
        tarfile.open(
            fileobj=stream,
            mode="r:",
            encoding="utf-8",
            errors="replace",
            tarinfo=_BoundedTarInfo,
        ) as archive,
    ):
        entries = 0
        while (member := archive.next()) is not None:
            _forget_members(archive)
            entries += 1
            if entries > MAX_ENTRIES:
                message = f"archive has more than {MAX_ENTRIES} entries; the rest is not listed"
                out.errors.append(ExtractionProblem(message))
                return
            out.values.extend(_entry_values(member, namespace, context, out))
            if plain_size is not None and member.offset_data + member.size > plain_size:
                raise EOFError(f"the data of {member.name!r} is cut short")
        if not _only_zeros_remain(stream):
            message = f"unreadable data after entry {entries}: not a tar header (corrupt archive?)"
            out.errors.append(ExtractionProblem(message))


class _BoundedTarInfo(tarfile.TarInfo):
    """Refuses an extended header (pax, GNU long name) too large to be read into memory."""

    _EXTENDED = (
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        tarfile.SOLARIS_XHDTYPE,
    )

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in self._EXTENDED and self.size > MAX_EXTENDED_HEADER:
            message = f"an extended header of {self.size} bytes (more than {MAX_EXTENDED_HEADER})"
            raise tarfile.ReadError(message)
        return super()._proc_member(tarfile_)  # type: ignore[misc]  # undeclared in typeshed


def _only_zeros_remain(stream: BufferedIOBase) -> bool:
    """Whether the rest of the stream is end-of-archive padding.

    tarfile stops quietly at the first header it cannot read once it has read one entry, so a
    corrupt header in the middle would otherwise look like a shorter, healthy archive.
    """
    while chunk := stream.read(_CHUNK):
        if chunk.count(0) != len(chunk):
            return False
    return True


def _open_decompressed(path: Path, compression: str) -> BufferedIOBase:
    # Decompressing here rather than through tarfile's "r:gz"-style modes lets a truncated
    # stream report itself as truncated (tarfile turns that into "not a bzip2 file").
    if compression == "gz":
        return gzip.GzipFile(path, "rb")
    if compression == "bz2":
        return bz2.BZ2File(path, "rb")
    if compression == "xz":
        return lzma.LZMAFile(path, "rb")
    return path.open("rb")


def _forget_members(archive: tarfile.TarFile) -> None:
    """Drop the headers TarFile keeps of every entry read, so memory stays flat however many
    entries there are; ``next()`` does not need them (only random access and extraction do)."""
    archive.members.clear()  # type: ignore[attr-defined]  # undeclared in typeshed, stable since 2.x


def _entry_values(
    member: tarfile.TarInfo, namespace: str, context: ExtractContext, out: Extraction
) -> list[DerivedValue]:
    name = member.name.replace("\x00", "\ufffd")
    timestamp = _entry_time(member, context, out)
    values = [DerivedValue(name=f"{namespace}:filename", value=name, timestamp=timestamp)]
    if member.isreg():
        size = DerivedValue(
            name=f"{namespace}:size:{name}", value=str(member.size), timestamp=timestamp
        )
        values.append(size)
    return values


def _entry_time(member: tarfile.TarInfo, context: ExtractContext, out: Extraction) -> datetime:
    try:
        return datetime.fromtimestamp(member.mtime, UTC)
    except (OverflowError, OSError, ValueError):
        message = f"entry {member.name!r} has an impossible mtime; the commit time is used"
        out.errors.append(ExtractionProblem(message))
        return context.committed_at


def _damage_message(compression: str, exc: BaseException) -> str:
    kind = f"{compression}-compressed tar archive" if compression else "tar archive"
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, EOFError):
        return f"{kind} is truncated: {detail}"
    return f"not a readable {kind}: {detail}"
