from __future__ import annotations

from fastapi import APIRouter

from jp_primary.api import schemas, views
from jp_primary.api.deps import Caller, Services
from jp_primary.api.errors import responses
from jp_primary.api.params import AttributeNames, JobKey
from jp_primary.api.policies import AnyUserForJobRead

router = APIRouter(prefix="/v1/jobs/{key}", tags=["attributes"])


@router.get("/attributes", responses=responses(401, 403, 404, 422))
async def get_attributes(
    key: JobKey,
    services: Services,
    name: AttributeNames = None,
    caller: Caller = AnyUserForJobRead,
) -> schemas.AttributesOut:
    """Attribute values of one job (SYSTEM, USER and FILE origins)."""
    job, found = await services.attributes.get(caller, key, name)
    return schemas.AttributesOut(
        jobid=job.jobid, key=job.key, values=[views.value_out(v) for v in found]
    )
