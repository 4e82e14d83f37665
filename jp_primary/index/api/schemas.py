"""Bodies of the index server's routes. The query request and answer are the primary's
(``jp_primary.api.query_schemas``); a found job adds ``primary_storage``, the URL of the primary
storage it came from."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from jp_primary.api.query_schemas import QueryJobOut


class IndexedJobOut(QueryJobOut):
    """A job of the primary's query answer, plus where it came from."""

    primary_storage: str = Field(description="The URL of the primary storage the job came from.")


class IndexQueryOut(BaseModel):
    jobs: list[IndexedJobOut]
    next: str | None = Field(description="Pass as after for the next page; null on the last")


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
