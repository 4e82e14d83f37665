"""Fixtures of the FTP upload door's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.backends.servers import self_signed_pem


@pytest.fixture(scope="session")
def tls_pem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return self_signed_pem(tmp_path_factory.mktemp("door-tls"))
