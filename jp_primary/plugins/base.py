"""The file-type plugin protocol.

A plugin declares the file classes it handles (``lb``, ``jdl``, ...), the original URN aliases of
those classes, the attribute namespaces it produces, and ``extract()``: a pure-ish function from a
committed file's bytes to attribute values. Extraction never refuses a file: the bytes are the
record, problems are reported next to the values.

How the bytes arrive is the plugin's choice, declared by the optional class attribute ``reads``:

* ``reads = "stream"``: ``extract`` gets a seekable, read-only binary file over the stored object
  that fetches only what is read (ranged GETs on S3, ``REST`` + ``RETR`` on FTP, the file itself
  on local disks): a tar listing reads the headers and seeks over the members;
* ``reads = "path"``, or no ``reads`` at all (plugins written before streams existed): a local
  file name, for readers that open the file themselves (``htcondor2.JobEventLog``); on a remote
  store that is a full download into a temporary file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Protocol, runtime_checkable

# A plugin's source: a stream (``reads = "stream"``) or a local path (``reads = "path"``).
Source = Path | BinaryIO


@dataclass(frozen=True)
class DerivedValue:
    """One attribute value derived from a file (origin FILE)."""

    name: str  # fully qualified ``namespace:local``
    value: str
    timestamp: datetime  # timezone-aware
    origin_detail: str | None = None  # default: "<class> <file name>"


@dataclass(frozen=True)
class ExtractionProblem:
    message: str
    line: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {"message": self.message, "line": self.line}


@dataclass
class Extraction:
    values: list[DerivedValue] = field(default_factory=list)
    errors: list[ExtractionProblem] = field(default_factory=list)
    # (name, value) pairs the file asks to record as user tags (origin USER), as the original
    # L&B plugin did at commit for UserTag events with a namespaced name.
    user_tags: list[tuple[str, str]] = field(default_factory=list)
    # Problems a plugin found but did not keep in ``errors`` (its own memory bound): they count.
    errors_omitted: int = 0
    # The job's JobRecord XML (JRA2 statistics record), from plugins that derive one (L&B).
    job_record: str | None = None


@dataclass(frozen=True)
class ExtractContext:
    jobid: str
    key: str
    file_class: str
    file_name: str
    committed_at: datetime


@runtime_checkable
class FilePlugin(Protocol):
    name: ClassVar[str]
    classes: ClassVar[tuple[str, ...]]
    aliases: ClassVar[dict[str, str]]  # original URN -> class
    namespaces: ClassVar[tuple[str, ...]]

    # Optional, not part of the checked protocol: ``reads: ClassVar[str] = "stream"`` (see above).

    def extract(self, source: Any, context: ExtractContext) -> Extraction:
        """``source`` is a binary stream for ``reads = "stream"``, else a local ``Path``."""
        ...


def wants_stream(plugin: object) -> bool:
    """Whether ``plugin`` reads a stream rather than a local file name."""
    return getattr(plugin, "reads", "path") == "stream"


@contextmanager
def opened(source: Source | str) -> Iterator[BinaryIO]:
    """The source as a binary stream: a path is opened (and closed after), a stream is used as it
    is (its owner closes it). Lets a stream plugin be called with a file name too."""
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as stream:
            yield stream
    else:
        yield source


def stream_size(stream: BinaryIO) -> int:
    """The size of a seekable stream, its position kept."""
    here = stream.tell()
    size = stream.seek(0, os.SEEK_END)
    stream.seek(here)
    return size
