"""Request and response bodies. Requests are strict: a ``false`` is not an integer, unknown
fields are refused."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from jp_primary.text import ClassText, MediaTypeText, NameText, SubjectText, ValueText

# What the OpenAPI document says about the identifiers clients build themselves.
JOBID_DOC = (
    "The full jobid: an absolute https:// (or http://) URL of at most 1024 characters, without "
    "query or fragment, whose last path segment is the job's key (1 to 128 characters of "
    "[A-Za-z0-9._~-]), e.g. https://lb.example.org:9000/kJ4mO8uLbQ3iP-Xw_2dfZA as L&B issues "
    "them. The key is how /v1/jobs/{key} URLs name the job. An HTCondor job without an L&B jobid "
    "is registered as condor://<schedd host>[:port]/<cluster>.<proc>; its key is "
    "<schedd host>_<cluster>.<proc>."
)
FILE_CLASS_DOC = (
    "The file's class, case-insensitive: a class name "
    "(^[a-z0-9][a-z0-9._-]{0,63}$) or one of its aliases. Built in: lb (L&B event dump; alias "
    "urn:org.glite.jp.primary:lb), isb and osb (input and output sandbox tarballs; aliases "
    "urn:org.glite.jp.primary:isb and urn:org.glite.jp.primary:osb), jdl (alias classad and "
    "urn:org.glite.jp.primary:classad) and condor-log; installed plugins may add classes. An "
    "unknown class gets 422 naming the known ones. Responses give the canonical name."
)
FILE_CLASS_EXAMPLES = ["lb", "osb", "urn:org.glite.jp.primary:isb", "jdl"]


class StrictIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class RegisterIn(StrictIn):
    jobid: SubjectText = Field(
        description=JOBID_DOC, examples=["https://lb.example.org:9000/kJ4mO8uLbQ3iP-Xw_2dfZA"]
    )
    owner: SubjectText | None = Field(
        None, description="Owner subject (trusted callers only; default self)"
    )


class BulkJobIn(StrictIn):
    """One job of a bulk registration. Its text is checked with the job (the same rule as
    ``RegisterIn``), so a bad item gets its own status in the results, not a 422 for the list."""

    jobid: str = Field(description="Full jobid, e.g. https://lb.example.org:9000/<unique>")
    owner: str | None = Field(None, description="Owner subject (default: the caller)")


class BulkIn(StrictIn):
    jobs: list[BulkJobIn] = Field(min_length=1, max_length=10000)


MAX_BULK_FILES = 100  # files in one POST /v1/files/bulk


class BulkFileIn(StrictIn):
    """One file of ``POST /v1/files/bulk``: what the one-shot PUT takes in its path, query and
    headers, checked by the same rules."""

    jobid: SubjectText = Field(description=JOBID_DOC)
    file_class: ClassText = Field(
        alias="class", description=FILE_CLASS_DOC, examples=FILE_CLASS_EXAMPLES
    )
    name: NameText = Field("", description="Distinguishes several files of one class")
    sha256: str | None = Field(
        None, pattern=r"^[0-9a-fA-F]{64}$", description="Hex digest of the part, verified"
    )
    content_type: MediaTypeText | None = Field(None, description="RFC 9110 media type")
    # "register" as the Python name would shadow BaseModel.register.
    register_job: bool = Field(
        False,
        alias="register",
        description="Register the job first when the service does not know it (as "
        "X-Register-Jobid)",
    )
    register_owner: SubjectText | None = Field(
        None, description="The owner of that registration (default: the caller)"
    )


class BulkFilesIn(StrictIn):
    files: list[BulkFileIn] = Field(min_length=1, max_length=MAX_BULK_FILES)


class FileOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    file_class: str = Field(
        alias="class", serialization_alias="class", description="The canonical class name"
    )
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
    """One user tag."""

    name: NameText = Field(min_length=1)
    value: ValueText


class TagListIn(StrictIn):
    """Several user tags, recorded together."""

    tags: list[TagIn] = Field(min_length=1, max_length=1000)


# The body of POST /v1/jobs/{key}/tags: exactly one of the two shapes (both refuse other fields).
TagsIn = TagIn | TagListIn
TAGS_DOC = "One tag {name, value} or several {tags: [{name, value}, ...]}"


class TagOut(BaseModel):
    name: str
    value: str
    author: str | None
    recorded_at: datetime
    seq: int


class UploadIn(StrictIn):
    file_class: ClassText = Field(
        alias="class", description=FILE_CLASS_DOC, examples=FILE_CLASS_EXAMPLES
    )
    name: NameText = Field("", description="Distinguishes several files of one class")
    content_type: MediaTypeText | None = Field(None, description="RFC 9110 media type")
    size: int | None = Field(None, ge=0, description="Verified at commit when given")
    sha256: str | None = Field(
        None,
        pattern=r"^[0-9a-fA-F]{64}$",
        description="Hex digest, verified at commit when given",
    )
    direct: bool = Field(False, description="Ask for a URL of the storage itself (S3, FTP door)")

    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)


class UploadOut(BaseModel):
    upload_id: str
    method: str
    url: str
    fields: dict[str, str] | None = None
    headers: dict[str, str] | None = None
    expires_at: datetime


class UploadProgressOut(BaseModel):
    upload_id: str
    state: str
    method: str
    received: int = Field(description="Bytes stored, contiguous from byte 0")
    complete: bool = Field(description="All bytes are in: the upload can be committed")
    size: int | None = Field(None, description="The size declared at the start, if any")
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


class BulkFileOut(BaseModel):
    index: int = Field(description="The item's place in the manifest (from 0)")
    status: int = Field(description="What the one-shot PUT of this file would have answered")
    error: str | None = None
    detail: str | None = None
    file: CommittedOut | FileOut | None = Field(
        None, description="The stored file (201, 200); with `brief`, without `extraction`"
    )
    registered: bool | None = Field(None, description="Whether the job was registered on the way")


class BulkFilesOut(BaseModel):
    results: list[BulkFileOut] = Field(description="One per manifest item, in its order")


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
