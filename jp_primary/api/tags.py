from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, status

from jp_primary.api import schemas, views
from jp_primary.api.deps import Caller, Services
from jp_primary.api.errors import responses
from jp_primary.api.params import JobKey
from jp_primary.api.policies import AnyUserForJobRead, AnyUserForJobWrite
from jp_primary.services.tags import Tag

router = APIRouter(prefix="/v1/jobs/{key}/tags", tags=["tags"])


def _tags(body: schemas.TagsIn) -> list[Tag]:
    if isinstance(body, schemas.TagIn):
        return [Tag(body.name, body.value)]
    return [Tag(t.name, t.value) for t in body.tags]


@router.post(
    "", status_code=status.HTTP_201_CREATED, responses=responses(400, 401, 403, 404, 413, 422)
)
async def record_tags(
    key: JobKey,
    body: Annotated[schemas.TagsIn, Body(description=schemas.TAGS_DOC)],
    services: Services,
    caller: Caller = AnyUserForJobWrite,
) -> list[schemas.TagOut]:
    """Record one or several user tags (appended, never overwritten)."""
    stored = await services.tags.record(caller, key, _tags(body))
    return [views.tag_out(v) for v in stored]


@router.get("", responses=responses(401, 403, 404, 422))
async def list_tags(
    key: JobKey, services: Services, caller: Caller = AnyUserForJobRead
) -> list[schemas.TagOut]:
    """All tags of the job, oldest first."""
    return [views.tag_out(v) for v in await services.tags.list_tags(caller, key)]
