"""HTTP Range (RFC 9110 §14) for file downloads: one byte range; several ranges are answered
with the whole file, which the RFC allows."""

from __future__ import annotations

import re

from jp_primary.errors import RangeNotSatisfiable

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


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
        length = min(int(last), size)
        if length == 0:
            raise UnsatisfiableRange(size)
        return size - length, length
    start = int(first)
    if start >= size:
        raise UnsatisfiableRange(size)
    end = min(int(last), size - 1) if last else size - 1
    if end < start:
        return None  # an invalid range is ignored
    return start, end - start + 1
