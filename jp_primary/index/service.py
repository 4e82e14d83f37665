"""The index server's use cases, built once per process: queries, the push receiver, feed status.

The web routes (``index/api``) call one method each; everything below is plain Python.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from jp_primary.auth.authenticate import Authenticator, build_authenticator
from jp_primary.auth.identity import Identity, Role
from jp_primary.config import AuthSettings, ServerSettings, Settings
from jp_primary.errors import Conflict, Forbidden, NotFound, StorageUnavailable
from jp_primary.index import feedstate
from jp_primary.index.apply import Applied, Applier, StaleFeed, apply_batch
from jp_primary.index.catalog import Catalog
from jp_primary.index.config import IndexConfig
from jp_primary.index.database import IndexDatabase
from jp_primary.index.feedstate import FeedState
from jp_primary.index.lifecycle import FeedLifecycle
from jp_primary.index.query import QueryEngine, QueryPage, QueryRequest
from jp_primary.index.session import create_index_engine
from jp_primary.index.tables import jobs, values
from jp_primary.index.wire import PushBatch


@dataclass(frozen=True)
class IndexCounts:
    jobs: int
    values: int


def primary_settings(config: IndexConfig) -> Settings:
    """The primary's settings objects the shared auth and listener code expect, from the file
    (keys the file leaves out come from the JP_* environment, as for the primary)."""
    server = config.server
    auth: dict[str, Any] = config.auth.model_dump(exclude_none=True)
    for key in ("token_key_path", "policy_file", "issuers_file", "voms_dir", "voms_ca_dir"):
        if key in auth:
            auth[key] = Path(auth[key])
    return Settings(
        server=ServerSettings(
            home=Path(server.home), host=server.host, port=server.port, public_url=server.public_url
        ),
        auth=AuthSettings(**auth),
    )


class IndexServices:
    def __init__(
        self,
        config: IndexConfig,
        settings: Settings,
        authenticator: Authenticator,
        db: IndexDatabase,
        catalog: Catalog,
    ) -> None:
        self.config = config
        self.settings = settings
        self.authenticator = authenticator
        self.db = db
        self.catalog = catalog
        self.applier = Applier(catalog)
        self.queries = QueryEngine(catalog, config.query)
        self.lifecycle = FeedLifecycle(config, db, self.applier)

    @classmethod
    def build(cls, config: IndexConfig) -> IndexServices:
        settings = primary_settings(config)
        server = config.server
        engine = create_index_engine(
            config.database_url, cache_mb=server.sqlite_cache_mb, mmap_mb=server.sqlite_mmap_mb
        )
        db = IndexDatabase(engine)
        return cls(config, settings, build_authenticator(settings), db, Catalog(config))

    async def start(self, run_feeds: bool = True) -> None:
        await self.lifecycle.start(run_feeds)

    async def close(self) -> None:
        await self.lifecycle.stop()
        self.db.close()

    async def query(self, caller: Identity, request: QueryRequest) -> QueryPage:
        """Owners see their own jobs; admins see every job."""
        owner = None if caller.has(Role.ADMIN) else caller.subject
        plan = self.queries.plan(request, owner)
        return await self.db.read(lambda conn: self.queries.run(conn, plan))

    async def receive(self, name: str, secret: str, batch: PushBatch) -> Applied:
        """Apply one pushed batch (idempotent by feed and batch number)."""

        def apply(conn: Connection) -> Applied:
            state = feedstate.get(conn, name, lock=True)
            if state is None:
                raise NotFound(f"no feed {name!r} on this index server")
            if state.secret is None or not hmac.compare_digest(state.secret, secret):
                raise Forbidden("this push address belongs to an ended subscription")
            try:
                return apply_batch(
                    conn,
                    self.applier,
                    name,
                    batch.records,
                    datetime.now(UTC),
                    history_done=batch.history_done,
                    remote_id=batch.feed_id,
                    batch=batch.batch,
                )
            except StaleFeed:
                raise Conflict(
                    f"feed {batch.feed_id!r} is not the current subscription of {name!r} "
                    "(yet): retry later"
                ) from None

        return await self.db.run(apply)

    async def feeds(self) -> list[FeedState]:
        return await self.db.read(feedstate.all_states)

    async def counts(self) -> IndexCounts:
        def count(conn: Connection) -> IndexCounts:
            n_jobs = conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar_one()
            n_values = conn.execute(sa.select(sa.func.count()).select_from(values)).scalar_one()
            return IndexCounts(int(n_jobs), int(n_values))

        return await self.db.read(count)

    async def check_ready(self) -> None:
        try:
            await self.db.read(lambda conn: conn.execute(sa.text("SELECT 1")))
        except sa.exc.SQLAlchemyError:
            raise StorageUnavailable("the index database does not answer") from None
