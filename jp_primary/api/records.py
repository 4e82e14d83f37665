from __future__ import annotations

from fastapi import APIRouter, Response

from jp_primary.api.deps import Caller, Services
from jp_primary.api.errors import Responses, responses
from jp_primary.api.params import JobKey
from jp_primary.api.policies import AnyUserForJobRead

router = APIRouter(prefix="/v1/jobs/{key}", tags=["attributes"])

XML: Responses = {
    200: {"content": {"application/xml": {}}, "description": "The JobRecord XML document"}
}


@router.get(
    "/record", response_class=Response, responses=responses(401, 403, 404, 422, 503, extra=XML)
)
async def get_record(
    key: JobKey, services: Services, caller: Caller = AnyUserForJobRead
) -> Response:
    """The JobRecord (JRA2 statistics record) derived from the job's L&B dump."""
    xml = await services.records.job_record(caller, key)
    return Response(xml, media_type="application/xml")
