"""Splitting an L&B purge dump into one file per job, streaming (the dump may be many GB).

A purge dump holds the events of many jobs, one per line, each prefixed with ``DG.ARRIVED=``;
the server writes them clustered by job. Sorted mode keeps one output file open and starts the
next when the jobid changes; ``unsorted`` keeps a bounded set of open files (least recently used
closed first) and queues each job once at the end. Files are named ``<unique>.<sec>_<usec>`` as
L&B's dump exporter names them; lines without a ``DG.JOBID`` are reported and skipped.
"""

from __future__ import annotations

import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from jp_primary.client.maildir import Maildir
from jp_primary.client.messages import FileMessage, format_file_message, valid_jobid

_JOBID = re.compile(rb'\bDG\.JOBID="([^"]*)"', re.IGNORECASE)
OPEN_FILES = 256
SYNC_BATCH = 1000  # per-job files and messages made durable together (one os.sync per batch)


@dataclass
class SplitReport:
    jobs: int = 0
    lines: int = 0
    skipped: int = 0  # lines without a usable DG.JOBID
    skipped_lines: list[int] = field(default_factory=list)  # the first 1,000 of their numbers
    files: list[Path] = field(default_factory=list)


class _Queue:
    """Per-job files waiting to be made durable and queued as dump messages."""

    def __init__(self, maildir: Maildir | None, report: SplitReport) -> None:
        self.maildir = maildir
        self.report = report
        self.pending: list[tuple[str, Path]] = []

    def add(self, jobid: str, path: Path) -> None:
        self.pending.append((jobid, path))
        self.report.jobs += 1
        if len(self.report.files) < 10:
            self.report.files.append(path)
        if len(self.pending) >= SYNC_BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        os.sync()  # the files before the messages that name them
        if self.maildir is not None:
            for jobid, path in self.pending:
                message = FileMessage(jobid=jobid, file=str(path.resolve()))
                self.maildir.deliver(format_file_message(message), sync=False)
            os.sync()
        self.pending.clear()


def _name(out: Path, jobid: str) -> Path:
    now = time.time()
    unique = jobid.rstrip("/").rsplit("/", 1)[-1]
    path = out / f"{unique}.{int(now)}_{int(now % 1 * 1e6):06d}"
    n = 0
    while path.exists():  # the same job twice within a microsecond (or a clash of clocks)
        n += 1
        path = out / f"{unique}.{int(now)}_{int(now % 1 * 1e6):06d}.{n}"
    return path


def split_dump(
    dump: Path,
    out: Path,
    maildir: Maildir | None = None,
    *,
    unsorted: bool = False,
    warn: Callable[[str], None] | None = None,
) -> SplitReport:
    out.mkdir(parents=True, exist_ok=True)
    report = SplitReport()
    queue = _Queue(maildir, report)
    handles: OrderedDict[str, BinaryIO] = OrderedDict()
    paths: dict[str, Path] = {}
    current: str | None = None
    with dump.open("rb") as source:
        for number, line in enumerate(source, 1):
            report.lines = number
            m = _JOBID.search(line)
            jobid = m[1].decode("utf-8", errors="replace") if m else ""
            if not jobid or not valid_jobid(jobid):
                report.skipped += 1
                if len(report.skipped_lines) < 1000:
                    report.skipped_lines.append(number)
                if warn is not None:
                    warn(f"line {number}: no valid DG.JOBID, skipped")
                continue
            if not line.endswith(b"\n"):
                line += b"\n"
            if not unsorted:
                if jobid != current:
                    if current is not None:
                        handles.pop(current).close()
                        queue.add(current, paths.pop(current))
                    current = jobid
                    paths[jobid] = _name(out, jobid)
                    handles[jobid] = paths[jobid].open("wb")
                handles[jobid].write(line)
                continue
            handle = handles.get(jobid)
            if handle is None:
                if jobid not in paths:
                    paths[jobid] = _name(out, jobid)
                handle = paths[jobid].open("ab")
                handles[jobid] = handle
                if len(handles) > OPEN_FILES:
                    handles.popitem(last=False)[1].close()
            else:
                handles.move_to_end(jobid)
            handle.write(line)
    for handle in handles.values():
        handle.close()
    for jobid, path in paths.items():
        queue.add(jobid, path)
    queue.flush()
    return report
