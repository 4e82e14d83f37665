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
from jp_primary.auth.identity import Role
from jp_primary.auth.tokens import ServiceTokens, load_or_create_key
from jp_primary.config import (
    AuthSettings,
    DatabaseSettings,
    ServerSettings,
    Settings,
    StorageSettings,
)
from jp_primary.db import migrate

PG_URL = os.environ.get(
    "JP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


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


def make_settings(home: Path, database_url: str, **storage: Any) -> Settings:
    return Settings(
        server=ServerSettings(home=home),
        database=DatabaseSettings(url=database_url),
        storage=StorageSettings(**storage),
        auth=AuthSettings(),
    )


class Api:
    """A TestClient plus the tokens of this service, for writing tests tersely."""

    def __init__(self, client: TestClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.tokens = ServiceTokens(load_or_create_key(settings.token_key_path))

    def auth(self, subject: str, *roles: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.issue(subject, roles)}"}

    @property
    def storage_root(self) -> Path:
        return self.settings.storage_root


@pytest.fixture
def make_api(tmp_path: Path, database_url: str) -> Iterator[Callable[..., Api]]:
    """Start the app (lifespan included) with optional storage settings overrides."""
    clients: list[TestClient] = []

    def start(**storage: Any) -> Api:
        home = tmp_path / f"home{len(clients)}"
        settings = make_settings(home, database_url, **storage)
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


def new_jobid() -> str:
    """A fresh L&B-style jobid (22-character unique part)."""
    return f"https://lb.example.org:9000/{secrets.token_urlsafe(16)[:22]}"


ALICE = "/DC=org/DC=example/O=JP Test/CN=Alice Smith/CN=12345"
BOB = "/DC=org/DC=example/O=JP Test/CN=Bob Jones/CN=67890"
LB_HOST = "/DC=org/DC=example/O=JP Test/CN=host/lb.example.org"
