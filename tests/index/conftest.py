"""Fixtures of the index server's tests: its own database (SQLite and PostgreSQL, built by its own
migrations) and the app in-process with its feeds recorded but not running."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from jp_primary.auth.identity import Role
from jp_primary.auth.tokens import ServiceTokens, load_or_create_key
from jp_primary.index import migrate
from jp_primary.index.api.app import create_index_app
from jp_primary.index.config import IndexConfig, parse_config
from jp_primary.index.service import IndexServices
from jp_primary.index.tables import feeds
from tests.conftest import create_pg_database

CONFIG = """
[server]
public_url = "http://testserver"
home = "{home}"
database_url = "{url}"

[query]
unindexed_limit = 5
unindexed_scan = 50

[[attributes]]
name = "lb:status"
indexed = true

[[attributes]]
name = "jp:regtime"
indexed = true

[[attributes]]
name = "lb:doneCode"
multivalued = false

[[attributes]]
name = "lb:exitCode"
queryable = false

[[attributes]]
name = "tag:*"

[[feeds]]
name = "alpha"
url = "http://primary-a.example.org:8901"

[[feeds]]
name = "beta"
url = "http://primary-b.example.org:8901"
mode = "pull"
"""


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def index_db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('index') / 'index.sqlite'}"
        migrate.upgrade(url)
        yield url
        return
    url, drop = create_pg_database()
    try:
        migrate.upgrade(url)
        yield url
    finally:
        drop()


class IndexApi:
    """The in-process index app, its services, tokens, and the two feeds' push addresses."""

    def __init__(self, client: TestClient, services: IndexServices) -> None:
        self.client = client
        self.services = services
        self.tokens = ServiceTokens(load_or_create_key(services.settings.token_key_path))
        self.remote: dict[str, str] = {}
        self.secret: dict[str, str] = {}

    def auth(self, subject: str, *roles: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.issue(subject, roles)}"}

    def subscribed(self, name: str) -> str:
        """Pretend the lifecycle subscribed feed ``name``: a remote id and a push secret."""
        remote, secret = f"feed-{secrets.token_hex(4)}", secrets.token_urlsafe(12)
        with self.services.db.engine.begin() as conn:
            conn.execute(
                feeds.update()
                .where(feeds.c.name == name)
                .values(remote_id=remote, secret=secret, last_batch=None, phase="history")
            )
        self.remote[name], self.secret[name] = remote, secret
        return remote

    def push(self, name: str, batch: int, records: list[dict[str, Any]], **extra: Any) -> Any:
        body = {"feed_id": self.remote[name], "batch": batch, "records": records, **extra}
        return self.client.post(f"/v1/push/{name}/{self.secret[name]}", json=body)

    def query(self, subject: str, *roles: Role, **body: Any) -> Any:
        return self.client.post("/v1/query", json=body, headers=self.auth(subject, *roles))


def _wipe(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for table in ("index_values", "index_feed_jobs", "index_jobs", "index_feeds"):
            conn.execute(sa.text(f"DELETE FROM {table}"))  # noqa: S608  (fixed table names)
    engine.dispose()


@pytest.fixture
def make_index(tmp_path: Path, index_db_url: str) -> Iterator[Callable[..., IndexApi]]:
    clients: list[TestClient] = []
    _wipe(index_db_url)

    def start(config_text: str = CONFIG) -> IndexApi:
        text = config_text.format(home=tmp_path / "home", url=index_db_url)
        config: IndexConfig = parse_config(text)
        services = IndexServices.build(config)
        client = TestClient(create_index_app(config, services, run_feeds=False))
        client.__enter__()
        clients.append(client)
        return IndexApi(client, services)

    yield start
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def index(make_index: Callable[..., IndexApi]) -> IndexApi:
    return make_index()
