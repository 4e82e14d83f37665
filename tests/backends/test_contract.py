"""The package's backend contract (jp_primary.testing.backends) run against real servers:
filesystem, pyftpdlib FTP and FTPS, globus-gridftp-server, SeaweedFS S3."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from jp_primary.backends.base import StorageBackend
from jp_primary.testing.backends import BackendContract, UnavailableContract

from .conftest import BACKENDS, make_backend


class TestBuiltinBackends(BackendContract):
    @pytest.fixture(params=BACKENDS)
    async def backend(
        self, request: pytest.FixtureRequest, tmp_path: Path
    ) -> AsyncIterator[StorageBackend]:
        store = make_backend(request.param, request, tmp_path)
        yield store
        await store.close()


class TestStoppedBackends(UnavailableContract):
    """Uses the ``stopped_backend`` fixture of conftest.py."""


class TestFilesystemByEntryPoint(BackendContract):
    """The three lines a third-party backend writes (docs/storage.md), here for a built-in."""

    backend_name = "filesystem"

    def options(self, area: str, tmp_path: Path) -> dict[str, Path]:
        return {"root": tmp_path / area}
