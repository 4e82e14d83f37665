"""The index server's routes: each parses, passes its policy, calls one service method."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from jp_primary.api.errors import responses
from jp_primary.api.policies import Admin, Anyone, AnyUser
from jp_primary.api.query_schemas import QueryIn
from jp_primary.api.schemas import ValueOut
from jp_primary.attributes.conditions import Condition
from jp_primary.auth.identity import Identity
from jp_primary.index.api import metrics
from jp_primary.index.api.schemas import FeedOut, FeedsOut, IndexedJobOut, IndexQueryOut, PushAck
from jp_primary.index.query import QueryRequest
from jp_primary.index.service import IndexServices
from jp_primary.index.wire import PushBatch

router = APIRouter()


async def _services(request: Request) -> IndexServices:
    services: IndexServices = request.app.state.services
    return services


Services = Annotated[IndexServices, Depends(_services)]


@router.post("/v1/query", responses=responses(400, 401, 413, 422, 503))
async def query(body: QueryIn, services: Services, caller: Identity = AnyUser) -> IndexQueryOut:
    """Jobs across every subscribed primary storage whose attributes satisfy all conditions."""
    where = [
        Condition(c.attr, c.op, c.value, c.value2, tuple(c.values) if c.values else None, c.origin)
        for c in body.where
    ]
    request = QueryRequest(where, body.select, body.latest, body.limit, body.after)
    page = await services.query(caller, request)
    jobs = [
        IndexedJobOut(
            jobid=j.jobid,
            key=j.key,
            owner=j.owner,
            primary_storage=j.primary_storage,
            values=[ValueOut.model_validate(vars(v)) for v in j.values],
        )
        for j in page.jobs
    ]
    return IndexQueryOut(jobs=jobs, next=page.next)


@router.post(
    "/v1/push/{name}/{secret}",
    dependencies=[Anyone],
    responses=responses(400, 403, 404, 409, 422),
)
async def push(
    name: Annotated[str, Path(max_length=64)],
    secret: Annotated[str, Path(max_length=128)],
    batch: PushBatch,
    services: Services,
) -> PushAck:
    """A primary storage's push delivery; the address's secret is the credential."""
    applied = await services.receive(name, secret, batch)
    return PushAck(
        applied_records=applied.records, applied_values=applied.values, duplicate=applied.duplicate
    )


@router.get("/v1/feeds", dependencies=[Admin], responses=responses(401, 403))
async def feeds(services: Services) -> FeedsOut:
    """Each subscription's state, place, lag and last error."""
    counts = await services.counts()
    return FeedsOut(
        feeds=[
            FeedOut(
                name=s.name,
                primary_storage=s.source,
                mode=s.mode,
                phase=s.phase,
                feed_id=s.remote_id,
                expires_at=s.expires_at,
                history_done=s.history_done,
                last_batch=s.last_batch,
                failures=s.failures,
                subscriptions=s.subscriptions,
                last_error=s.last_error,
                last_error_at=s.last_error_at,
                last_delivery_at=s.last_delivery_at,
                last_seq=s.last_seq,
                records=s.records,
                lag_seconds=s.remote_lag,
            )
            for s in await services.feeds()
        ],
        jobs=counts.jobs,
        values=counts.values,
    )


@router.get("/healthz", dependencies=[Anyone])
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", dependencies=[Anyone], responses=responses(503))
async def readyz(services: Services) -> dict[str, str]:
    """Readiness: the index database answers."""
    await services.check_ready()
    return {"status": "ready"}


@router.get(
    "/metrics",
    dependencies=[Anyone],
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def prometheus(services: Services) -> Response:
    """Prometheus metrics: requests, and each feed's state, failures and lag."""
    metrics.observe(await services.feeds(), await services.counts())
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
