"""The owner of a job as its L&B dump says: the ``DG.USER`` of its RegJob event."""

from __future__ import annotations

import re
from pathlib import Path

_USER = re.compile(rb'\bDG\.USER="((?:[^"\\]|\\.)*)"', re.IGNORECASE)
_REGJOB = re.compile(rb'\bDG\.EVNT="RegJob"', re.IGNORECASE)


def unescape(value: bytes) -> str:
    text = value.decode("utf-8", errors="replace")
    return re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], text)


def regjob_owner(path: Path, limit: int = 64 << 20) -> str | None:
    """The DG.USER of the dump's RegJob line, None when there is none (reads at most ``limit``
    bytes, line by line)."""
    seen = 0
    with path.open("rb") as fh:
        for line in fh:
            seen += len(line)
            if _REGJOB.search(line):
                m = _USER.search(line)
                if m and m[1] and m[1] != b"(nil)":
                    return unescape(m[1])
            if seen > limit:
                break
    return None
