from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from jp_primary.api.deps import Services
from jp_primary.api.errors import responses
from jp_primary.api.policies import Anyone
from jp_primary.api.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/healthz", dependencies=[Anyone])
async def healthz() -> HealthOut:
    """Liveness: the process answers."""
    return HealthOut(status="ok")


@router.get("/readyz", dependencies=[Anyone], responses=responses(503))
async def readyz(services: Services) -> HealthOut:
    """Readiness: the database and the storage backend answer."""
    await services.check_ready()
    return HealthOut(status="ready")


@router.get(
    "/metrics",
    dependencies=[Anyone],
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics() -> Response:
    """Prometheus metrics of this process."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
