"""The index server's ASGI application (``jp-primary index-server``)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.types import Scope, Send

from jp_primary import __version__
from jp_primary.api import errors
from jp_primary.api.guard import RequestGuard
from jp_primary.api.metrics import MetricsMiddleware
from jp_primary.index.api import routes
from jp_primary.index.config import IndexConfig, load_config
from jp_primary.index.service import IndexServices

CONFIG_ENV = "JP_INDEX_CONFIG"  # how `jp-primary index-server` hands uvicorn's factory the file
PUSH_PREFIX = "/v1/push/"
PUSH_BODY_MAX = 64 << 20  # a pushed batch of history may hold many thousands of values


class IndexGuard(RequestGuard):
    """The primary's request guard, except that a push delivery is authorized by its address
    (a primary pushes without credentials of this server; the route checks the secret)."""

    async def _authenticated(self, scope: Scope, send: Send) -> bool:
        if scope["path"].startswith(PUSH_PREFIX):
            return True
        return await super()._authenticated(scope, send)


def create_index_app(
    config: IndexConfig | None = None,
    services: IndexServices | None = None,
    run_feeds: bool = True,
) -> FastAPI:
    """The app; ``run_feeds=False`` records the feeds but leaves subscribing to the caller."""
    if config is None:
        config = load_config(os.environ[CONFIG_ENV])
    built = services or IndexServices.build(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = built
        await built.start(run_feeds)
        try:
            yield
        finally:
            await built.close()

    app = FastAPI(
        title="jp_primary index server",
        version=__version__,
        summary="Subscribes to primary storages' feeds and answers queries across them",
        lifespan=lifespan,
    )
    errors.install(app)
    app.include_router(routes.router)
    server = built.settings.server
    app.add_middleware(
        IndexGuard,
        max_body=max(int(server.max_json_body), PUSH_BODY_MAX),
        max_in_flight=server.max_requests_in_flight,
    )
    app.add_middleware(MetricsMiddleware)
    return app
