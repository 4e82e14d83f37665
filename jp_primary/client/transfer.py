"""What the two clients share for moving bytes: sources that can be read again on a retry,
digests, the download's partial-file bookkeeping, and the FTP door."""

from __future__ import annotations

import ftplib
import hashlib
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, cast
from urllib.parse import unquote, urlsplit

CHUNK = 1 << 20
# Files over this size go through the two-phase upload, which survives a dropped connection.
TWO_PHASE_THRESHOLD = 64 << 20

Source = str | Path | bytes | BinaryIO
Progress = Callable[[int], None]  # called with the number of bytes just moved


def source_size(source: Source) -> int | None:
    if isinstance(source, bytes):
        return len(source)
    if isinstance(source, str | Path):
        return Path(source).stat().st_size
    return None


def rereadable(source: Source) -> bool:
    """Whether a retry can send the bytes again (a path or bytes, not a stream)."""
    return isinstance(source, bytes | str | Path)


def sha256_of(source: Source) -> str | None:
    """The hex digest of a path or bytes (None for a stream: it can be read once only)."""
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest()
    if isinstance(source, str | Path):
        digest = hashlib.sha256()
        with Path(source).open("rb") as fh:
            while block := fh.read(CHUNK):
                digest.update(block)
        return digest.hexdigest()
    return None


def chunks(source: Source, progress: Progress | None = None, offset: int = 0) -> Iterator[bytes]:
    """The bytes of ``source`` from ``offset`` on (a path or bytes) in chunks of 1 MiB, reported
    to ``progress`` as they go."""
    if isinstance(source, bytes):
        stream: BinaryIO = io.BytesIO(source)
        close = False
    elif isinstance(source, str | Path):
        stream = Path(source).open("rb")  # noqa: SIM115 - closed below, in the generator
        close = True
    else:
        stream, close = source, False
    try:
        if offset:
            stream.seek(offset)
        while block := stream.read(CHUNK):
            if progress is not None:
                progress(len(block))
            yield block
    finally:
        if close:
            stream.close()


class ReportingFile:
    """A file opened for a multipart POST (the presigned S3 POST), reporting each read to
    ``progress``: httpx reads it in chunks and takes its length from ``fileno``, so the bytes
    stream with a Content-Length instead of being held in memory."""

    def __init__(self, path: Path, progress: Progress | None) -> None:
        self._file = path.open("rb")
        self._progress = progress

    def read(self, size: int = -1) -> bytes:
        block = self._file.read(size)
        if self._progress is not None and block:
            self._progress(len(block))
        return block

    def fileno(self) -> int:
        return self._file.fileno()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()


def post_body(source: Source, progress: Progress | None) -> bytes | BinaryIO:
    """What a presigned POST sends as its file: a path streams (close it after); bytes or a
    stream (read once, no length of its own) are sent as bytes."""
    if isinstance(source, str | Path):
        return cast(BinaryIO, ReportingFile(Path(source), progress))
    return b"".join(chunks(source, progress))


class ResumableSend:
    """The bookkeeping of a resumable send (``PUT`` with ``Content-Range``) of a path or bytes:
    after a dropped connection the client asks the service how many bytes it kept and sends the
    rest from there. Failures count against ``attempts`` only while no byte moves forward, so a
    long send over a flaky link goes on as long as it makes progress."""

    def __init__(self, source: Source, size: int, progress: Progress | None, attempts: int):
        self.source, self.size, self.progress, self.attempts = source, size, progress, attempts
        self.offset = 0  # where the next PUT starts
        self.reported = 0  # bytes reported to ``progress``
        self.failures = 0

    def headers(self, base: dict[str, str] | None) -> dict[str, str]:
        return (base or {}) | {"Content-Range": f"bytes {self.offset}-{self.size - 1}/{self.size}"}

    def body(self) -> Iterator[bytes]:
        return chunks(self.source, self._moved, self.offset)

    def _moved(self, count: int) -> None:
        self.reported += count
        if self.progress is not None:
            self.progress(count)

    def failed(self) -> bool:
        """Count a failed PUT; whether to try again."""
        self.failures += 1
        return self.failures < self.attempts

    def may_be_behind(self) -> bool:
        """Whether a 409 to a resumed PUT may mean that the service holds more than the progress
        read said (the cut send was still storing its last piece then); counts as a failure."""
        return self.offset > 0 and self.failed()

    def resume(self, received: int, complete: bool) -> bool:
        """Go on from what the service holds; True when it holds everything (the answer to the
        last PUT was lost, not its bytes)."""
        if complete:
            self._moved(self.size - self.reported)
            return True
        if received > self.offset:
            self.failures = 0
        self._moved(received - self.reported)  # the bar goes back to what was kept
        self.offset = received
        return False


def ftp_store(url: str, source: Source, progress: Progress | None = None) -> None:
    """Send the bytes to a one-time URL of the FTP upload door (``ftp://user:pass@host:port/path``)."""
    parts = urlsplit(url)
    ftp = ftplib.FTP()  # noqa: S321 - the door hands out one-time credentials over plain FTP
    ftp.connect(parts.hostname or "127.0.0.1", parts.port or 21, timeout=60)
    try:
        ftp.login(unquote(parts.username or "anonymous"), unquote(parts.password or ""))
        reader = io.BufferedReader(_IterReader(chunks(source, progress)))
        # RFC 1738: the URL path is relative to the login directory.
        name = unquote(parts.path).lstrip("/")
        ftp.storbinary(f"STOR {name}", reader, blocksize=CHUNK)
    finally:
        try:
            ftp.quit()
        except ftplib.all_errors:
            ftp.close()


class _IterReader(io.RawIOBase):
    def __init__(self, it: Iterator[bytes]) -> None:
        self._it = it
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if not self._rest:
            self._rest = next(self._it, b"")
        n = min(len(buffer), len(self._rest))
        buffer[:n] = self._rest[:n]
        self._rest = self._rest[n:]
        return n


class Partial:
    """A download in progress: ``<dest>.part`` and the ETag it was started with, so an
    interrupted download resumes with ``Range``/``If-Range`` and never mixes two versions."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.part = dest.with_name(dest.name + ".part")
        self.tag_file = dest.with_name(dest.name + ".part.etag")

    def resume_headers(self) -> dict[str, str]:
        if not (self.part.is_file() and self.tag_file.is_file()):
            self.part.unlink(missing_ok=True)
            return {}
        size = self.part.stat().st_size
        etag = self.tag_file.read_text().strip()
        return {"Range": f"bytes={size}-", "If-Range": etag} if size and etag else {}

    def open(self, status: int, etag: str | None) -> BinaryIO:
        """The file to append to (206) or to write afresh (200)."""
        if status != 206:
            if etag:
                self.tag_file.write_text(etag)
            return self.part.open("wb")
        return self.part.open("ab")

    def finish(self, expected_sha256: str | None) -> Path:
        if expected_sha256 and sha256_of(self.part) != expected_sha256:
            self.part.unlink(missing_ok=True)
            self.tag_file.unlink(missing_ok=True)
            raise OSError(f"the downloaded bytes of {self.dest} do not match their sha256")
        self.part.replace(self.dest)
        self.tag_file.unlink(missing_ok=True)
        return self.dest


def etag_sha256(etag: str | None) -> str | None:
    """The service's ETag is the file's sha256 in quotes."""
    if not etag:
        return None
    value = etag.removeprefix("W/").strip('"')
    return value if len(value) == 64 else None
