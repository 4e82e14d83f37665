"""Bodies of the feed routes (``/v1/feeds``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from jp_primary.api.query_schemas import ConditionIn
from jp_primary.api.schemas import StrictIn
from jp_primary.text import AttributeNameText, UrlText


class FeedIn(StrictIn):
    destination: UrlText | None = Field(
        None,
        description="http(s) URL the batches are POSTed to (push mode); absent: pull mode "
        "(GET /v1/feeds/{feed_id}/changes)",
    )
    attributes: list[AttributeNameText] = Field(
        max_length=1000,
        description="Attributes whose values are sent (aliases accepted); an entry ending "
        "in * selects every attribute whose qualified name starts with the expanded prefix "
        "(tag:* = every user tag); * only at the end, a bare * is refused (422)",
    )
    conditions: list[ConditionIn] = Field(
        default_factory=list,
        max_length=1000,
        description="As the where of POST /v1/query: all must hold (AND), at most 64",
    )
    history: bool = Field(False, description="Send the jobs matching now, then history_done")
    continuous: bool = Field(False, description="Then send every later change in seq order")
    ttl_seconds: int | None = Field(None, ge=1, description="Lifetime unless refreshed")
    notify_removed: bool = Field(
        False, description="Send {removed: true} when a sent job stops matching"
    )


class FeedCreatedOut(BaseModel):
    feed_id: str
    expires_at: datetime
    mode: str = Field(description="push or pull")


class FeedOut(BaseModel):
    feed_id: str
    mode: str
    destination: str | None
    attributes: list[str]
    conditions: list[dict[str, Any]]
    history: bool
    continuous: bool
    notify_removed: bool
    phase: str = Field(description="history, continuous, done or expired")
    snapshot_seq: int = Field(description="S: history holds the values with seq <= S")
    cursor_seq: int = Field(description="Every change up to this seq is acknowledged")
    head_seq: int
    lag_seq: int
    lag_seconds: float
    batches_sent: int = Field(description="Batches acknowledged")
    batches_pending: int = Field(description="Batches cut and not yet acknowledged")
    created_at: datetime
    expires_at: datetime
    last_delivery_at: datetime | None
    last_error: str | None
    attempts: int = Field(description="Failed deliveries of the pending batch")
    next_retry_at: datetime | None
    worker: str | None = Field(description="The process delivering a push feed (its lease)")


class RefreshedOut(BaseModel):
    expires_at: datetime


class ChangesOut(BaseModel):
    records: list[dict[str, Any]]
    next: str = Field(description="Opaque token: pass it as since to get what follows")
    history_done: bool
