from __future__ import annotations

import asyncio

import pytest

from jp_primary.services.batching import Batcher, isolating


def test_concurrent_submissions_share_batches_and_get_their_own_outcomes() -> None:
    batches: list[list[int]] = []

    async def run_batch(items: list[int]) -> list[int | Exception]:
        batches.append(items)
        await asyncio.sleep(0.01)  # a transaction in flight: later submitters queue up
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]

    async def main() -> list[int | BaseException]:
        batcher: Batcher[int, int] = Batcher(run_batch)
        try:
            return await asyncio.gather(
                *(batcher.submit(i) for i in range(20)), return_exceptions=True
            )
        finally:
            await batcher.close()

    outcomes = asyncio.run(main())
    for i, outcome in enumerate(outcomes):
        if i % 2:
            assert isinstance(outcome, ValueError)
            assert str(outcome) == f"odd {i}"
        else:
            assert outcome == i * 10
    assert sorted(i for batch in batches for i in batch) == list(range(20))
    assert len(batches) < 20  # grouped, not one transaction per item


def test_an_outage_fails_every_member_of_its_batch_once() -> None:
    calls: list[list[int]] = []

    async def run_batch(items: list[int]) -> list[int | Exception]:
        calls.append(items)
        await asyncio.sleep(0.01)
        raise RuntimeError("database went away")

    async def main() -> list[int | BaseException]:
        batcher: Batcher[int, int] = Batcher(run_batch, item_caused=lambda exc: False)
        try:
            return await asyncio.gather(
                *(batcher.submit(i) for i in range(8)), return_exceptions=True
            )
        finally:
            await batcher.close()

    outcomes = asyncio.run(main())
    assert all(isinstance(o, RuntimeError) and "went away" in str(o) for o in outcomes)
    assert sum(len(c) for c in calls) == 8  # not retried in parts: no item caused it


def test_defect_1_a_failing_item_is_isolated_from_its_batch() -> None:
    calls: list[list[int]] = []

    async def run_batch(items: list[int]) -> list[int | Exception]:
        calls.append(items)
        if 5 in items or 11 in items:  # the whole transaction fails while they are in it
            raise ValueError("cannot store")
        return [i * 10 for i in items]

    outcomes = asyncio.run(isolating(run_batch, list(range(16))))
    for i, outcome in enumerate(outcomes):
        if i in (5, 11):
            assert isinstance(outcome, ValueError)
        else:
            assert outcome == i * 10
    assert len(calls) <= 1 + 2 * 2 * 4  # bisection: about 2k·log2(n) retries, not n


def test_one_failing_item_alone_hears_its_error() -> None:
    async def run_batch(items: list[int]) -> list[int | Exception]:
        raise RuntimeError("no")

    async def main() -> None:
        batcher: Batcher[int, int] = Batcher(run_batch)
        try:
            with pytest.raises(RuntimeError, match="no"):
                await batcher.submit(1)
        finally:
            await batcher.close()

    asyncio.run(main())
