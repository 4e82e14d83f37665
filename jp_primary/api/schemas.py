"""Request and response bodies. Requests are strict: a ``false`` is not an integer, unknown
fields are refused."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class StrictIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class RegisterIn(StrictIn):
    jobid: str = Field(description="Full jobid, e.g. https://lb.example.org:9000/<unique>")
    owner: str | None = Field(
        None, description="Owner subject (trusted callers only; default self)"
    )


class BulkIn(StrictIn):
    jobs: list[RegisterIn] = Field(min_length=1, max_length=10000)


class FileOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    file_class: str = Field(alias="class", serialization_alias="class")
    name: str
    size: int
    sha256: str
    content_type: str | None
    uploader: str
    committed_at: datetime
    extraction_errors: list[dict[str, object]] = Field(
        default_factory=list,
        description="The first extraction problems; all kept ones are at "
        "/v1/jobs/{key}/files/{class}/errors",
    )
    extraction_error_count: int = Field(0, description="Extraction problems found in all")


class JobOut(BaseModel):
    jobid: str
    key: str
    owner: str
    registered_at: datetime
    registered_by: str
    files: list[FileOut] = Field(default_factory=list)


class BulkItemOut(BaseModel):
    jobid: str
    status: int
    job: JobOut | None = None
    error: str | None = None
    detail: str | None = None


class BulkOut(BaseModel):
    results: list[BulkItemOut]


class ValueOut(BaseModel):
    name: str
    value: str
    origin: str
    origin_detail: str | None
    timestamp: datetime
    seq: int


class AttributesOut(BaseModel):
    jobid: str
    key: str
    values: list[ValueOut]


class TagIn(StrictIn):
    name: str = Field(min_length=1, max_length=255)
    value: str


class TagsIn(StrictIn):
    """Either one tag (``name``, ``value``) or several (``tags``)."""

    name: str | None = Field(None, min_length=1, max_length=255)
    value: str | None = None
    tags: list[TagIn] | None = Field(None, min_length=1, max_length=1000)


class TagOut(BaseModel):
    name: str
    value: str
    author: str | None
    recorded_at: datetime
    seq: int


class UploadIn(StrictIn):
    file_class: str = Field(alias="class", description="lb, isb, osb, jdl, ... or an original URN")
    name: str = Field("", description="Distinguishes several files of one class")
    content_type: str | None = Field(None, max_length=255)
    size: int | None = Field(None, ge=0, description="Verified at commit when given")
    sha256: str | None = Field(None, description="Hex digest, verified at commit when given")
    direct: bool = Field(False, description="Ask for a URL of the storage itself (S3, FTP door)")

    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)


class UploadOut(BaseModel):
    upload_id: str
    method: str
    url: str
    fields: dict[str, str] | None = None
    headers: dict[str, str] | None = None
    expires_at: datetime


class ExtractionOut(BaseModel):
    values: list[ValueOut]
    errors: list[dict[str, object]] = Field(description="The first problems (a bounded list)")
    error_count: int = Field(0, description="Problems found in all, kept or not")


class FileErrorsOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    file_class: str = Field(alias="class", serialization_alias="class")
    name: str
    errors: list[dict[str, object]] = Field(description="The first problems (a bounded list)")
    error_count: int = Field(description="Problems found in all, kept or not")


class CommittedOut(FileOut):
    extraction: ExtractionOut


class LinkOut(BaseModel):
    url: str
    expires_at: datetime


class HealthOut(BaseModel):
    status: str
