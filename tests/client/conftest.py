"""The live ``jp-primary serve`` most client tests share, one per module and database kind
(modules that need SQLite only define their own ``live``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .support import Live


@pytest.fixture(scope="module")
def live(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    service = Live(tmp_path_factory.mktemp("live"), database_url).start()
    try:
        yield service
    finally:
        service.stop()
