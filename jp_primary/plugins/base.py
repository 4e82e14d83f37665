"""The file-type plugin protocol.

A plugin declares the file classes it handles (``lb``, ``jdl``, ...), the original URN aliases of
those classes, the attribute namespaces it produces, and ``extract()``: a pure-ish function from a
committed file's bytes (as a local path) to attribute values. Extraction never refuses a file: the
bytes are the record, problems are reported next to the values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable


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

    def extract(self, path: Path, context: ExtractContext) -> Extraction: ...
