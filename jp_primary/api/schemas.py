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
    extraction_errors: list[dict[str, object]] = Field(default_factory=list)


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
    errors: list[dict[str, object]]


class CommittedOut(FileOut):
    extraction: ExtractionOut


class LinkOut(BaseModel):
    url: str
    expires_at: datetime


class HealthOut(BaseModel):
    status: str


class WhoAmIOut(BaseModel):
    subject: str = Field(description="What ownership is recorded against")
    roles: list[str] = Field(description="trusted, indexer, admin (sorted)")
    groups: list[str] = Field(description="Groups claimed by an external token (wlcg.groups)")
    fqans: list[str] = Field(
        description="VOMS FQANs of a verified attribute certificate, primary first"
    )
    authenticated_by: str = Field(description="token, x509 or frontend")
    issuer: str | None = Field(None, description="The token issuer, for tokens")


class QuarantinedFileOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    file_class: str = Field(alias="class", serialization_alias="class")
    name: str
    size: int
    sha256: str
    content_type: str | None
    uploader: str | None
    committed_at: datetime
    location: str = Field(description="Storage key where the bytes are kept")


class QuarantinedValueOut(BaseModel):
    seq: int = Field(description="Retracted from the job (announced to feeds)")
    name: str
    value: str
    origin: str
    origin_detail: str | None
    timestamp: datetime
    author: str | None


class QuarantinedUploadOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    upload_id: str
    file_class: str = Field(alias="class", serialization_alias="class")
    name: str
    state: str = Field(description="The state it was in; it was aborted by the takeover")


class QuarantineOut(BaseModel):
    """What a squatter had stored in a job a trusted registration took over."""

    id: int
    jobid: str = Field(description="The jobid the squatter registered")
    squatter: str
    squatter_registrar: str
    squatter_registered_at: datetime
    claimed_by: str = Field(description="The trusted service whose registration took over")
    new_owner: str
    quarantined_at: datetime
    retain_until: datetime
    files: list[QuarantinedFileOut]
    values: list[QuarantinedValueOut]
    uploads: list[QuarantinedUploadOut]
