"""Typed results of the client: what the API's JSON answers hold, as pydantic models.

The models accept fields they do not know (the API may add fields to answers; API.md says clients
must tolerate that) and keep them in ``model_extra``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Result(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class StoredFile(Result):
    file_class: str = Field(alias="class")
    name: str
    size: int
    sha256: str
    content_type: str | None = None
    uploader: str | None = None
    committed_at: datetime | None = None
    extraction_error_count: int = 0


class Value(Result):
    name: str
    value: str
    origin: str
    origin_detail: str | None = None
    timestamp: datetime
    seq: int


class Extraction(Result):
    values: list[Value] = Field(default_factory=list)
    errors: list[dict[str, Any]] = Field(default_factory=list)
    error_count: int = 0


class CommittedFile(StoredFile):
    extraction: Extraction = Field(default_factory=Extraction)
    # Whether this one-shot PUT registered the job (the X-Job-Registered header, not the body).
    registered: bool = False


class BulkFileResult(Result):
    """One item of ``put_files_bulk``: what the one-shot PUT of that file would have answered
    (``status``), with the stored file (201 stored now, 200 the same bytes were there already)
    or the error."""

    index: int
    status: int
    file: CommittedFile | None = None
    error: str | None = None
    detail: str | None = None
    registered: bool | None = None

    @property
    def stored(self) -> bool:
        """The file is stored with these bytes (now or earlier)."""
        return self.status in (200, 201) and self.file is not None


class Job(Result):
    jobid: str
    key: str
    owner: str
    registered_at: datetime
    registered_by: str | None = None
    files: list[StoredFile] = Field(default_factory=list)


class Registration(Result):
    """The answer to a registration: the job and whether this call created it (201) or found it
    already registered for the same owner (200)."""

    job: Job
    created: bool


class BulkItem(Result):
    jobid: str
    status: int
    job: Job | None = None
    error: str | None = None
    detail: str | None = None


class UploadTicket(Result):
    upload_id: str
    method: str
    url: str
    fields: dict[str, str] | None = None
    headers: dict[str, str] | None = None
    expires_at: datetime


class UploadProgress(Result):
    upload_id: str
    state: str
    method: str
    received: int
    complete: bool
    size: int | None = None
    expires_at: datetime


class Attributes(Result):
    jobid: str
    key: str | None = None
    values: list[Value]


class Tag(Result):
    name: str
    value: str
    author: str | None = None
    recorded_at: datetime
    seq: int


class WhoAmI(Result):
    subject: str
    roles: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)
    fqans: list[str] = Field(default_factory=list)
    authenticated_by: str
    issuer: str | None = None


class Link(Result):
    url: str
    expires_at: datetime


class QueryJob(Result):
    jobid: str
    key: str | None = None
    owner: str | None = None
    values: list[Value] = Field(default_factory=list)


class QueryPage(Result):
    jobs: list[QueryJob]
    next: str | None = None


class BatchAttributes(Result):
    """``POST /v1/jobs/attributes``: the values of many jobs, and the ones not found."""

    jobs: list[QueryJob] = Field(default_factory=list)
    unknown: list[str] = Field(default_factory=list)


class Feed(Result):
    feed_id: str
    expires_at: datetime | None = None
    mode: str | None = None


class FeedRecord(Result):
    jobid: str
    owner: str | None = None
    values: list[Value] = Field(default_factory=list)
    retracted: list[int] = Field(default_factory=list)
    removed: bool = False


class FeedChanges(Result):
    records: list[FeedRecord]
    next: str | None = None
    history_done: bool = False
