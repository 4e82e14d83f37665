"""Reading a file line by line in bounded memory, whatever it holds.

``for line in stream`` keeps a whole "line" in memory, and a file without newlines (random bytes,
a binary uploaded under the wrong class) is one line as long as the file. Plugins read through
``bounded_lines`` instead: a line longer than the limit is skipped without being held, and its
caller is told so it can report the line.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

_SKIP_CHUNK = 1024 * 1024


def bounded_lines(stream: BinaryIO, max_length: int) -> Iterator[bytes | None]:
    """Each line of ``stream`` (with its newline), or ``None`` for a line of more than
    ``max_length`` bytes (not counting the newline), whose bytes are read past and dropped."""
    while line := stream.readline(max_length + 1):
        if len(line) <= max_length or line.endswith(b"\n"):
            yield line
            continue
        _skip_to_line_end(stream)
        yield None


def _skip_to_line_end(stream: BinaryIO) -> None:
    while chunk := stream.readline(_SKIP_CHUNK):
        if chunk.endswith(b"\n"):
            return
