"""The job stream a history is cut from: the same jobs as reading each chunk when asked, whatever
the sizes asked for, with one chunk read ahead at most."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from hypothesis import given, settings
from hypothesis import strategies as st

from jp_primary.db.repositories.feed_values import HistoryJob
from jp_primary.feed.jobstream import JobStream


def _jobs(ids: list[int]) -> list[HistoryJob]:
    return [HistoryJob(i, True, f'{{"jobid":"{i}"}}', []) for i in ids]


class Table:
    """Jobs with these ids; records every read."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = sorted(ids)
        self.reads: list[tuple[int, int]] = []

    def fetch(self, after: int, want: int) -> list[HistoryJob]:
        self.reads.append((after, want))
        return _jobs([i for i in self.ids if i > after][:want])


@settings(max_examples=60, deadline=None)
@given(
    ids=st.sets(st.integers(min_value=1, max_value=400), max_size=120),
    wants=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30),
    chunk=st.integers(min_value=1, max_value=25),
)
def test_reads_that_go_on_give_what_direct_reads_give(
    ids: set[int], wants: list[int], chunk: int
) -> None:
    table = Table(list(ids))
    with ThreadPoolExecutor(1) as pool:
        stream = JobStream(table.fetch, pool, chunk)
        after = 0
        for want in wants:
            got = stream(after, want)
            assert got == _jobs([i for i in table.ids if i > after][:want])
            after = got[-1].job_id if got else after
    # Every chunk starts where the one before ended: nothing read twice when reads go on.
    starts = [a for a, _ in table.reads]
    assert len(starts) == len(set(starts))


def test_a_read_from_elsewhere_starts_afresh() -> None:
    table = Table(list(range(1, 101)))
    with ThreadPoolExecutor(1) as pool:
        stream = JobStream(table.fetch, pool, 10)
        assert [j.job_id for j in stream(0, 5)] == [1, 2, 3, 4, 5]
        assert [j.job_id for j in stream(50, 3)] == [51, 52, 53]
        assert [j.job_id for j in stream(53, 10)] == list(range(54, 64))
        assert [j.job_id for j in stream(95, 10)] == [96, 97, 98, 99, 100]
        assert stream(100, 10) == []
