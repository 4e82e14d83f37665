"""What primaries send: feed records, push batches and pull pages (API.md "Push delivery").

Parsed here (not in ``api/``) because pushed batches and pulled pages carry the same records.
Unknown fields are ignored: a primary may send more than the contract promises.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from jp_primary.text import AttributeNameText, NameText, StoredValueText, SubjectText


class FeedValue(BaseModel):
    name: AttributeNameText
    value: StoredValueText
    origin: str = Field(max_length=16)
    origin_detail: SubjectText | None = None
    timestamp: str | None = Field(None, max_length=64)
    seq: int = Field(ge=0)


class FeedRecord(BaseModel):
    jobid: SubjectText
    owner: SubjectText | None = None  # a `removed` notice may come without it
    values: list[FeedValue] = Field(default_factory=list)
    retracted: list[int] = Field(default_factory=list)
    removed: bool = False


class PushBatch(BaseModel):
    feed_id: NameText
    batch: int = Field(ge=0)
    history_done: bool = False
    records: list[FeedRecord] = Field(default_factory=list)


class ChangesPage(BaseModel):
    records: list[FeedRecord] = Field(default_factory=list)
    next: str | None = None
    history_done: bool = False
