"""Bodies of the batch routes: POST /v1/query and POST /v1/jobs/attributes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from jp_primary.api.schemas import StrictIn, ValueOut
from jp_primary.text import AttributeNameText, KeyText, NameText, SubjectText, ValueText

Operator = Literal["eq", "ne", "lt", "gt", "within", "exists", "in", "prefix"]


class ConditionIn(StrictIn):
    """One condition; it holds when ANY value of the attribute satisfies it (``ne`` too)."""

    attr: AttributeNameText = Field(
        description="Qualified name or alias form (lb:status, system:regtime, tag:campaign)",
        examples=["lb:status"],
    )
    op: NameText = Field(
        description="eq, ne, lt, gt, within (value..value2 inclusive), exists, in (values), "
        "prefix (strings only)",
        examples=["eq"],
    )
    value: ValueText | None = Field(None, description="Compared as the attribute's type")
    value2: ValueText | None = Field(None, description="Upper bound of within (inclusive)")
    values: list[ValueText] | None = Field(None, description="The values of in (at most 1,000)")
    origin: NameText | None = Field(None, description="Only values of this origin count")


class QueryIn(StrictIn):
    where: list[ConditionIn] = Field(
        default_factory=list, max_length=1000, description="AND of at most 64 conditions"
    )
    select: list[AttributeNameText] = Field(
        default_factory=list, max_length=1000, description="Attributes whose values to return"
    )
    latest: bool = Field(False, description="Only the newest value of each selected attribute")
    limit: int = Field(100, ge=1, le=10_000, description="Jobs per page")
    after: SubjectText | None = Field(None, description="The next cursor of the previous page")


class QueryJobOut(BaseModel):
    jobid: str
    key: str
    owner: str
    values: list[ValueOut]


class QueryOut(BaseModel):
    jobs: list[QueryJobOut]
    next: str | None = Field(description="Pass as after for the next page; null on the last")


class BulkValuesIn(StrictIn):
    jobids: list[SubjectText] | None = Field(None, max_length=1000)
    keys: list[KeyText] | None = Field(None, max_length=1000)
    names: list[AttributeNameText] | None = Field(
        None, max_length=64, description="Attributes to return; all when absent"
    )


class BulkValuesOut(BaseModel):
    jobs: list[QueryJobOut]
    unknown: list[str] = Field(description="Jobids or keys of no registered job")
    forbidden: list[str] = Field(description="Jobids or keys of jobs the caller may not read")
