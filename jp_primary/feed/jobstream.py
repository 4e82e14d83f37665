"""A history's jobs in id order, read one chunk ahead of the one being cut.

Reading a chunk is most of a history's time and cutting it into a batch (matching, storing) the
rest: with the next chunk read meanwhile, in its own unit of work, the two overlap. Memory stays
bounded: one chunk read ahead, and what is left of the one being cut.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future

from jp_primary.db.repositories.feed_values import HistoryJob

# Reads the next ``want`` jobs after a job id, in its own unit of work.
Fetch = Callable[[int, int], list[HistoryJob]]


class JobStream:
    """A ``ChunkReader`` (``feed.cutter``) for reads that go on where the last one ended, as a
    history's do; a read from anywhere else starts the stream afresh there."""

    def __init__(self, fetch: Fetch, executor: Executor, chunk: int) -> None:
        self._fetch = fetch
        self._executor = executor
        self._chunk = chunk
        self._at = -1  # the job id the last read ended at (-1: none yet)
        self._buffer: list[HistoryJob] = []  # jobs read after ``_at``, in order
        self._end = -1  # the job id the jobs read so far end at
        self._ended = False  # a read came back short: no job after ``_end``
        self._ahead: Future[list[HistoryJob]] | None = None  # the chunk after ``_end``

    def __call__(self, after: int, want: int) -> list[HistoryJob]:
        if after != self._at:
            self._restart(after)
        out: list[HistoryJob] = []
        while len(out) < want:
            if not self._buffer:
                if self._ended:
                    break
                self._buffer = self._next_chunk()
            taken = self._buffer[: want - len(out)]
            del self._buffer[: len(taken)]
            out.extend(taken)
        self._at = out[-1].job_id if out else after
        if not self._ended and self._ahead is None:
            self._ahead = self._executor.submit(self._fetch, self._end, self._chunk)
        return out

    def _restart(self, after: int) -> None:
        self._at = self._end = after
        self._buffer, self._ended, self._ahead = [], False, None

    def _next_chunk(self) -> list[HistoryJob]:
        ahead, self._ahead = self._ahead, None
        chunk = ahead.result() if ahead is not None else self._fetch(self._end, self._chunk)
        self._ended = len(chunk) < self._chunk
        if chunk:
            self._end = chunk[-1].job_id
        return chunk
