"""Bodies of the index server's routes. The query request is the primary's; a found job adds
``primary_storage``, the URL of the primary storage it came from."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from jp_primary.text import AttributeNameText, StoredValueText, SubjectText, ValueText


class _StrictIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ConditionIn(_StrictIn):
    attr: AttributeNameText
    op: str = Field(max_length=16)
    value: ValueText | None = None
    value2: ValueText | None = None
    values: list[ValueText] | None = None
    origin: str | None = Field(None, max_length=16)


class QueryIn(_StrictIn):
    where: list[ConditionIn] = Field(default_factory=list)
    select: list[AttributeNameText] = Field(default_factory=list, max_length=100)
    latest: bool = False
    limit: int | None = Field(None, ge=1, le=1000)
    after: str | None = Field(None, max_length=256)


class ValueOut(BaseModel):
    name: str
    value: StoredValueText
    origin: str
    origin_detail: str | None
    timestamp: str | None
    seq: int


class IndexedJobOut(BaseModel):
    jobid: SubjectText
    key: str
    owner: SubjectText
    primary_storage: str = Field(description="The URL of the primary storage the job came from.")
    values: list[ValueOut]


class QueryOut(BaseModel):
    jobs: list[IndexedJobOut]
    next: str | None


class PushAck(BaseModel):
    applied_records: int
    applied_values: int
    duplicate: bool = Field(description="The batch had been applied before (a redelivery).")


class FeedOut(BaseModel):
    name: str
    primary_storage: str
    mode: str
    phase: str
    feed_id: str | None
    expires_at: datetime | None
    history_done: bool
    last_batch: int | None
    failures: int
    subscriptions: int
    last_error: str | None
    last_error_at: datetime | None
    last_delivery_at: datetime | None
    last_seq: int | None
    records: int
    lag_seconds: float | None = Field(
        description="How far behind the primary sees this feed (from its GET /v1/feeds/{id})."
    )


class FeedsOut(BaseModel):
    feeds: list[FeedOut]
    jobs: int
    values: int
