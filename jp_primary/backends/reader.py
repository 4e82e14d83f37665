"""A seekable, read-only file over a store that serves byte ranges: what plugins read.

A plugin that lists a tar archive needs its headers, not its members; one that parses a log reads
it once from start to end. ``RangeReader`` serves both with one adaptive read-ahead: a read that
continues where the last fetch from the store ended doubles the next fetch (up to
``MAX_FETCH``, so a sequential pass costs few requests), while a read after a seek elsewhere
fetches only ``MIN_FETCH`` (so skipping over a member's body costs nothing but the seek). Bytes
come from ``fetch(offset, length)``, a blocking call each backend supplies (a ranged GET, a
``REST`` + ``RETR``, a ``pread``); ``fetched`` and ``fetches`` count what the store served.

Everything here blocks: plugins run in worker threads.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import Any

MIN_FETCH = 4 * 1024  # a tar header (512 bytes) and a little context, after a seek
MAX_FETCH = 8 * 1024 * 1024  # a sequential reader's largest request

Fetch = Callable[[int, int], bytes]


class RangeReader(io.BufferedIOBase):
    """A read-only binary file of ``size`` bytes whose bytes come from ``fetch``."""

    def __init__(
        self,
        size: int,
        fetch: Fetch,
        on_close: Callable[[], None] | None = None,
        read_through: int = 0,
    ):
        """``read_through``: a forward seek up to this far past what was last fetched continues
        the sequential read instead of starting a new request (fewer requests, more bytes: for
        stores where a request costs more than that many bytes of transfer)."""
        super().__init__()
        self.size = size
        self._fetch = fetch
        self._on_close = on_close
        self._read_through = read_through
        self._pos = 0
        self._buf = b""
        self._buf_start = 0  # offset of _buf[0] in the object
        self._window = MIN_FETCH
        self.fetched = 0  # bytes the store served
        self.fetches = 0  # requests made to it

    # -- the file interface ------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._check_open()
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._check_open()
        if whence == os.SEEK_SET:
            target = offset
        elif whence == os.SEEK_CUR:
            target = self._pos + offset
        elif whence == os.SEEK_END:
            target = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if target < 0:
            raise OSError(f"negative seek position {target}")
        self._pos = target
        return target

    def read(self, size: int | None = -1) -> bytes:
        self._check_open()
        if size is None or size < 0:
            size = max(0, self.size - self._pos)
        out = bytearray()
        while len(out) < size and self._pos < self.size:
            piece = self._from_buffer(size - len(out))
            if not piece:
                break
            out += piece
        return bytes(out)

    def read1(self, size: int = -1) -> bytes:
        self._check_open()
        if size < 0:
            size = MAX_FETCH
        return self._from_buffer(size) if self._pos < self.size else b""

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        self._check_open()
        limit = self.size if size is None or size < 0 else size
        out = bytearray()
        while len(out) < limit and self._pos < self.size:
            piece = self._from_buffer(limit - len(out), line=True)
            if not piece:
                break
            out += piece
            if piece.endswith(b"\n"):
                break
        return bytes(out)

    def close(self) -> None:
        if not self.closed:
            self._buf = b""
            try:
                if self._on_close is not None:
                    self._on_close()
            finally:
                super().close()

    # -- buffering -----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")

    def _from_buffer(self, want: int, line: bool = False) -> bytes:
        """Up to ``want`` bytes at the position (up to a newline with ``line``), fetching when
        the buffer does not hold it."""
        start = self._pos - self._buf_start
        if not 0 <= start < len(self._buf):
            # A line's length is unknown: the read-ahead alone decides how much to fetch.
            self._fill(0 if line else want)
            start = self._pos - self._buf_start
            if not 0 <= start < len(self._buf):
                return b""  # the store had fewer bytes than announced
        end = min(len(self._buf), start + want)
        if line:
            newline = self._buf.find(b"\n", start, end)
            if newline >= 0:
                end = newline + 1
        piece = self._buf[start:end]
        self._pos += len(piece)
        return piece

    def _fill(self, want: int) -> None:
        end = self._buf_start + len(self._buf)
        gap = self._pos - end
        sequential = bool(self._buf) and 0 <= gap <= self._read_through
        self._window = min(MAX_FETCH, self._window * 2) if sequential else MIN_FETCH
        start = end if sequential else self._pos  # reading through: from where the last ended
        length = min(
            max(min(want, MAX_FETCH), self._window) + (self._pos - start), self.size - start
        )
        self._buf = self._fetch(start, length)
        self._buf_start = start
        self.fetched += len(self._buf)
        self.fetches += 1
