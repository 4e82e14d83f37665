"""Batch routes: POST /v1/query (jobs by their attributes) and POST /v1/jobs/attributes (the
values of many jobs at once)."""

from __future__ import annotations

from fastapi import APIRouter

from jp_primary.api import views
from jp_primary.api.deps import Caller, Services
from jp_primary.api.errors import responses
from jp_primary.api.policies import AnyUserForJobRead, AnyUserForQuery
from jp_primary.api.query_schemas import (
    BulkValuesIn,
    BulkValuesOut,
    QueryIn,
    QueryJobOut,
    QueryOut,
)
from jp_primary.attributes.conditions import Condition
from jp_primary.services.query import JobValues, Query

router = APIRouter(prefix="/v1", tags=["query"])


@router.post("/query", responses=responses(400, 401, 413, 422, 503))
async def query_jobs(
    body: QueryIn, services: Services, caller: Caller = AnyUserForQuery
) -> QueryOut:
    """Jobs whose attributes satisfy every condition, a page at a time (docs/queries.md)."""
    where = [
        Condition(
            c.attr, c.op, c.value, c.value2, None if c.values is None else tuple(c.values), c.origin
        )
        for c in body.where
    ]
    query = Query(where, body.select, body.latest, body.limit, body.after)
    page = await services.query.query(caller, query)
    return QueryOut(jobs=[_job_out(j) for j in page.jobs], next=page.next)


@router.post("/jobs/attributes", responses=responses(400, 401, 413, 422))
async def values_of_jobs(
    body: BulkValuesIn, services: Services, caller: Caller = AnyUserForJobRead
) -> BulkValuesOut:
    """Attribute values of up to 1,000 jobs; unknown and unreadable ones are listed."""
    found = await services.query.values_of_jobs(
        caller, jobids=body.jobids or (), keys=body.keys or (), names=body.names
    )
    return BulkValuesOut(
        jobs=[_job_out(j) for j in found.jobs], unknown=found.unknown, forbidden=found.forbidden
    )


def _job_out(job: JobValues) -> QueryJobOut:
    values = [views.value_out(v) for v in job.values]
    return QueryJobOut(jobid=job.jobid, key=job.key, owner=job.owner, values=values)
