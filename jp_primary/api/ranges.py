"""HTTP Range (RFC 9110 §14) for file downloads: one byte range; several ranges are answered
with the whole file, which the RFC allows."""

from __future__ import annotations

import re

from jp_primary.errors import RangeNotSatisfiable

_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")
# Larger than any file; positions with more digits are read as this instead of by int(), which
# refuses over 4300 digits (and a client must not make the server do big-number arithmetic).
_BEYOND_ANY_FILE = 10**19


def _position(digits: str) -> int:
    significant = digits.lstrip("0")
    return int(significant or "0") if len(significant) <= 19 else _BEYOND_ANY_FILE


class UnsatisfiableRange(RangeNotSatisfiable):
    def __init__(self, size: int) -> None:
        super().__init__(f"the range lies outside the file of {size} bytes")
        self.headers = {"Content-Range": f"bytes */{size}"}


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first byte, length) of a satisfiable single range; None for "the whole file"."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None  # multiple or unknown-unit ranges: serve everything
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix range: the last N bytes
        length = min(_position(last), size)
        if length == 0:
            raise UnsatisfiableRange(size)
        return size - length, length
    start = _position(first)
    if start >= size:
        raise UnsatisfiableRange(size)
    end = min(_position(last), size - 1) if last else size - 1
    if end < start:
        return None  # an invalid range is ignored
    return start, end - start + 1
