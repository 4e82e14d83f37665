"""Exponential backoff with full jitter (pure)."""

from __future__ import annotations

import random


def retry_delay(attempts: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait before try ``attempts + 1`` (``attempts >= 1`` failures so far): uniform
    in ``[0, min(cap, base * 2**(attempts-1))]``, never below a tenth of ``base`` so a dead
    receiver is not hammered."""
    ceiling = min(cap, base * 2 ** min(max(attempts - 1, 0), 32))
    draw = (rng or random).uniform(0, ceiling)  # noqa: S311 - jitter, not security
    return max(base / 10, draw)
