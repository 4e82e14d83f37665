from __future__ import annotations

from fastapi import APIRouter, Response, status

from jp_primary.api import schemas, views
from jp_primary.api.deps import Caller, Services
from jp_primary.api.errors import responses
from jp_primary.api.params import JobIdQuery, JobKey
from jp_primary.api.policies import AnyUser, AnyUserForJobRead, Trusted
from jp_primary.services.jobs import BulkItem

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.JobOut,
    responses=responses(
        400,
        401,
        403,
        409,
        413,
        422,
        extra={200: {"model": schemas.JobOut, "description": "Already registered"}},
    ),
)
async def register_job(
    body: schemas.RegisterIn, services: Services, caller: Caller = AnyUser
) -> Response:
    """Register a job (idempotent for the same owner)."""
    reg = await services.registrar.register(caller, body.jobid, body.owner)
    code = status.HTTP_201_CREATED if reg.created else status.HTTP_200_OK
    # Serialised directly: the hottest write route skips FastAPI's response re-validation.
    return Response(views.job_out(reg.job).model_dump_json(), code, media_type="application/json")


@router.post("/bulk", responses=responses(400, 401, 403, 413, 422))
async def register_jobs(
    body: schemas.BulkIn, services: Services, caller: Caller = Trusted
) -> schemas.BulkOut:
    """Register many jobs in one transaction; each item reports its own status."""
    items = [BulkItem(j.jobid, j.owner) for j in body.jobs]
    results = await services.registrar.register_bulk(caller, items)
    return schemas.BulkOut(
        results=[
            schemas.BulkItemOut(
                jobid=r.jobid,
                status=r.status,
                job=views.job_out(r.job) if r.job else None,
                error=r.error,
                detail=r.detail,
            )
            for r in results
        ]
    )


@router.get("", responses=responses(401, 403, 404, 422))
async def find_job(
    services: Services,
    jobid: JobIdQuery,
    caller: Caller = AnyUserForJobRead,
) -> schemas.JobOut:
    """Look a job up by its full jobid."""
    found = await services.files.job_by_jobid(caller, jobid)
    return views.job_out(found.job, found.files)


@router.get("/{key}", responses=responses(401, 403, 404, 422))
async def get_job(
    key: JobKey, services: Services, caller: Caller = AnyUserForJobRead
) -> schemas.JobOut:
    """A job with its committed files."""
    found = await services.files.job(caller, key)
    return views.job_out(found.job, found.files)
