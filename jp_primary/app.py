"""The ASGI application: ``create_app()`` (uvicorn ``--factory jp_primary.app:create_app``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from fastapi import FastAPI

from jp_primary import __version__
from jp_primary.api import (
    admin,
    attributes,
    bulk_files,
    docs,
    errors,
    feeds,
    files,
    health,
    jobs,
    provenance,
    query,
    records,
    tags,
    uploads,
    whoami,
)
from jp_primary.api.accesslog import AccessLogMiddleware
from jp_primary.api.guard import RequestGuard
from jp_primary.api.metrics import MetricsMiddleware
from jp_primary.api.web import pages, static_files
from jp_primary.config import Settings, load_settings
from jp_primary.feed.dispatcher import FeedDispatcher, dispatch_settings
from jp_primary.feed.maintenance import purge_forever
from jp_primary.services.container import AppServices

log = logging.getLogger(__name__)
EXPIRY_INTERVAL = 60.0

ROUTERS = (
    health.router,
    jobs.router,
    uploads.router,
    bulk_files.router,
    files.router,
    tags.router,
    attributes.router,
    records.router,
    provenance.router,
    whoami.router,
    admin.router,
    feeds.router,
    docs.router,
    pages.router,
    static_files.router,
    query.router,
)


async def _expire_uploads(services: AppServices, interval: float) -> None:
    """End uploads past their deadline and drop their bytes (safe in every process at once)."""
    while True:
        await asyncio.sleep(interval)
        try:
            if ended := await services.uploads.expire_due():
                log.info("expired %d uncommitted upload(s)", ended)
        except Exception:
            log.exception("upload expiry failed; retrying in %.0f s", interval)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = AppServices.build(settings)
        app.state.services = services
        background = [asyncio.create_task(_expire_uploads(services, EXPIRY_INTERVAL))]
        # Expired feeds and unneeded tombstones go whether or not this process delivers feeds.
        grace = timedelta(seconds=settings.feed.purge_grace)
        background.append(asyncio.create_task(purge_forever(services.feeds.engine, grace)))
        if settings.feed.worker:  # one push-feed worker per process (docs/feeds.md)
            worker = FeedDispatcher(services.feeds.engine, dispatch_settings(settings.feed))
            background.append(asyncio.create_task(worker.run()))
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await services.close()

    app = FastAPI(
        title="jp_primary",
        version=__version__,
        summary="Job Provenance primary storage: the permanent archive of grid and batch jobs",
        lifespan=lifespan,
        # /docs and /redoc come from api/docs.py, from assets installed with the package.
        docs_url=None,
        redoc_url=None,
    )
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    server = settings.server
    # Innermost first: the guard acts before any route reads a body; the access log sees all.
    app.add_middleware(
        RequestGuard,
        max_body=int(server.max_json_body),
        max_in_flight=server.max_requests_in_flight,
        max_bulk_body=int(server.max_bulk_body),
    )
    app.add_middleware(MetricsMiddleware)
    if server.access_log:
        app.add_middleware(AccessLogMiddleware)
    return app
