from __future__ import annotations

import asyncio

import pytest

from jp_primary.services.batching import Batcher


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


def test_a_failing_transaction_fails_every_member_of_its_batch() -> None:
    async def run_batch(items: list[int]) -> list[int | Exception]:
        raise RuntimeError("database went away")

    async def main() -> None:
        batcher: Batcher[int, int] = Batcher(run_batch)
        try:
            with pytest.raises(RuntimeError, match="database went away"):
                await batcher.submit(1)
        finally:
            await batcher.close()

    asyncio.run(main())
