"""Resumable sends: the bytes of an upload in ranges (``Content-Range``), kept as they arrive.

A plain ``PUT /v1/uploads/{id}`` is all or nothing: a connection dropped at 90 % of a large file
loses everything. A ranged PUT instead stores what arrives in pieces of ``PIECE_SIZE`` bytes,
each its own staging object written atomically by the backend, so a dropped connection loses
at most the piece in flight. ``received`` tells a client where to go on; the PUT that brings the
last byte joins the pieces into one staging object, which the commit then treats like the bytes
of a plain PUT. Pieces live under the upload's staging prefix, so abort and expiry remove them
with everything else.

This works the same on every backend (it only puts, reads, lists and deletes objects); the cost
is one extra copy of the bytes when they are joined.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from jp_primary.backends.base import StorageBackend, StoredObject
from jp_primary.errors import Conflict, InvalidInput, PayloadTooLarge
from jp_primary.services.storage_keys import staging_prefix

PIECE_SIZE = 8 * 1024 * 1024
_PIECE = "piece-"
_CONTENT_RANGE = re.compile(r"bytes (\d{1,19})-(\d{1,19})/(\d{1,19})")


@dataclass(frozen=True)
class ByteRange:
    """``Content-Range: bytes first-last/total`` (inclusive ``last``)."""

    first: int
    last: int
    total: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1


def parse_content_range(value: str) -> ByteRange:
    found = _CONTENT_RANGE.fullmatch(value.strip())
    if found is None:
        raise InvalidInput(
            f"Content-Range {value[:80]!r} is not 'bytes FIRST-LAST/TOTAL' (decimal byte "
            "positions, LAST inclusive, TOTAL the whole file's size): e.g. 'bytes 0-99/1000'"
        )
    first, last, total = (int(g) for g in found.groups())
    if not first <= last < total:
        raise InvalidInput(
            f"Content-Range {value!r} is not a range inside the file: it needs "
            "FIRST <= LAST < TOTAL"
        )
    return ByteRange(first, last, total)


@dataclass(frozen=True)
class Piece:
    key: str
    offset: int
    size: int


def _piece_key(upload_id: str, offset: int) -> str:
    return f"{staging_prefix(upload_id)}{_PIECE}{offset:020d}"


async def pieces(backend: StorageBackend, upload_id: str) -> list[Piece]:
    """The pieces that follow each other from byte 0 (a gap ends the list: what lies beyond it
    is sent again)."""
    prefix = staging_prefix(upload_id)
    found: dict[int, Piece] = {}
    # Listed by the whole prefix: filesystem and FTP list directories, not name prefixes.
    async for obj in backend.list(prefix):
        offset = obj.key.removeprefix(prefix + _PIECE)
        if offset != obj.key and offset.isdigit() and len(offset) == 20 and obj.size > 0:
            found[int(offset)] = Piece(obj.key, int(offset), obj.size)
    contiguous: list[Piece] = []
    position = 0
    while position in found:
        contiguous.append(found[position])
        position += found[position].size
    return contiguous


def received(parts: list[Piece]) -> int:
    return sum(p.size for p in parts)


class _Cutter:
    """Hands out one stream of chunks as consecutive pieces of a given size."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._carry = b""
        self._done = False

    async def has_more(self) -> bool:
        while not self._carry and not self._done:
            try:
                self._carry = await anext(self._chunks)
            except StopAsyncIteration:
                self._done = True
        return bool(self._carry)

    async def piece(self, size: int) -> AsyncIterator[bytes]:
        left = size
        while left > 0 and await self.has_more():
            chunk, self._carry = self._carry[:left], self._carry[left:]
            left -= len(chunk)
            yield chunk


async def store_range(
    backend: StorageBackend,
    upload_id: str,
    byte_range: ByteRange,
    chunks: AsyncIterator[bytes],
    *,
    max_size: int,
) -> int:
    """Store a ranged PUT's body as pieces; return the bytes received in all (contiguous from
    byte 0). The range must start where the stored bytes end, or at 0 to start over."""
    if byte_range.total > max_size:
        raise PayloadTooLarge(
            f"the file's total size {byte_range.total} is over this service's limit of "
            f"{max_size} bytes"
        )
    have = await pieces(backend, upload_id)
    if byte_range.first == 0:
        for piece in have:
            await backend.delete(piece.key)
        have = []
    position = received(have)
    if byte_range.first != position:
        raise Conflict(
            f"this upload holds {position} bytes: send the rest from byte {position} "
            f"(Content-Range: bytes {position}-{byte_range.total - 1}/{byte_range.total}), "
            "or from 0 to start over"
        )
    cutter = _Cutter(chunks)
    end = byte_range.last + 1
    while position < end and await cutter.has_more():
        size = min(PIECE_SIZE, end - position)
        stored = await backend.put_stream(
            _piece_key(upload_id, position), cutter.piece(size), max_size=size
        )
        position += stored.size
    if position < end:
        raise InvalidInput(
            f"the body ended at byte {position} but the Content-Range says it runs to byte "
            f"{byte_range.last}: {position} bytes are stored, send the rest from byte {position}"
        )
    if await cutter.has_more():
        raise InvalidInput(
            f"the body is longer than its Content-Range ({byte_range.length} bytes): bytes up to "
            f"{byte_range.last} are stored, send the rest from byte {end}"
        )
    return position


async def join(backend: StorageBackend, upload_id: str, key: str, *, max_size: int) -> StoredObject:
    """Join the pieces into the one staging object ``key`` and drop them."""
    parts = await pieces(backend, upload_id)

    async def joined() -> AsyncIterator[bytes]:
        for piece in parts:
            async for chunk in backend.read(piece.key):
                yield chunk

    stored = await backend.put_stream(key, joined(), max_size=max_size)
    for piece in parts:
        await backend.delete(piece.key)
    return stored
