"""Shared fixtures: databases (SQLite and PostgreSQL, built by the migrations), the app, tokens.

PostgreSQL comes from ``JP_TEST_POSTGRES_URL`` (default: the local server on 127.0.0.1:5432 as
user postgres). Each test session creates its own database there and drops it at the end. Where
no server answers, the PostgreSQL variants skip with the reason, unless
``JP_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) turns that skip into a failure.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from jp_primary.app import create_app
from jp_primary.db import migrate

# Shared helpers live in tests/helpers.py; the names below stay importable from here for
# branches written before the move (new code imports them from tests.helpers).
from tests.helpers import ALICE as ALICE
from tests.helpers import BOB as BOB
from tests.helpers import LB_HOST as LB_HOST
from tests.helpers import Api as Api
from tests.helpers import make_settings as make_settings
from tests.helpers import new_jobid as new_jobid

PG_URL = os.environ.get(
    "JP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _postgres_or_skip() -> str:
    try:
        engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        reason = f"PostgreSQL not reachable at {make_url(PG_URL).render_as_string()}: {exc}"
        if os.environ.get("JP_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason} (JP_REQUIRE_POSTGRES=1 makes this a failure)")
        pytest.skip(reason)
    return PG_URL


def create_pg_database() -> tuple[str, Callable[[], None]]:
    server = _postgres_or_skip()
    name = f"jp_test_{secrets.token_hex(6)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database of each kind, shared by the tests of one session."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'jp.sqlite'}"
        migrate.upgrade(url)
        yield url
        return
    url, drop = create_pg_database()
    try:
        migrate.upgrade(url)
        yield url
    finally:
        drop()


@pytest.fixture
def make_api(tmp_path: Path, database_url: str) -> Iterator[Callable[..., Api]]:
    """Start the app (lifespan included) with optional storage settings overrides (and server
    settings overrides as ``server={...}``)."""
    clients: list[TestClient] = []

    def start(server: dict[str, Any] | None = None, **storage: Any) -> Api:
        home = tmp_path / f"home{len(clients)}"
        settings = make_settings(home, database_url, server, **storage)
        client = TestClient(create_app(settings))
        client.__enter__()
        clients.append(client)
        return Api(client, settings)

    yield start
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api()


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No ``JP_*`` setting in the environment (the test harness's own ``JP_TEST_*`` and
    ``JP_REQUIRE_*`` stay) and a fresh working directory, returned, so defaults are the defaults."""
    for name in list(os.environ):
        if name.startswith("JP_") and not name.startswith(("JP_TEST_", "JP_REQUIRE_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path
