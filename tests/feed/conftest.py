"""Fixtures of the feed tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.feed.procs import Receiver


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    """A receiver (not started: the test chooses its first mode), stopped at the end."""
    made = Receiver(tmp_path)
    try:
        yield made
    finally:
        made.stop()
