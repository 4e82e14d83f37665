"""HTTP conditional and range requests (RFC 9110 §13, §14) for file downloads: ETags compared
weakly for ``If-None-Match`` and strongly for ``If-Range``; one byte range, several ranges are
answered with the whole file, which the RFC allows."""

from __future__ import annotations

import re

from jp_primary.errors import RangeNotSatisfiable

_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")
# One entity-tag of a list: optional W/ then a quoted opaque tag (RFC 9110 §8.8.3).
_ETAG = re.compile(r'\s*(W/)?("[^"]*")\s*(?:,|$)')
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


def _entity_tags(header: str) -> list[tuple[bool, str]]:
    """(weak, opaque tag) of each well-formed member of an ETag list; malformed ones are skipped."""
    return [(bool(m.group(1)), m.group(2)) for m in _ETAG.finditer(header)]


def none_match(header: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` matches the current (strong) ``etag``: ``*`` matches any existing
    file, a list matches when one member equals it under the weak comparison (``W/`` ignored)."""
    if header is None:
        return False
    if header.strip() == "*":
        return True
    return any(tag == etag for _weak, tag in _entity_tags(header))


def if_range_holds(header: str | None, etag: str) -> bool:
    """Whether a ``Range`` may be honoured: no ``If-Range``, or one naming the current ETag under
    the strong comparison. A weak tag or a date never matches (no Last-Modified is sent)."""
    if header is None:
        return True
    tags = _entity_tags(header)
    return len(tags) == 1 and tags[0] == (False, etag)


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
