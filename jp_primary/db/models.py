"""The tables. The schema is created and changed only by the Alembic migrations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    false,
)
from sqlmodel import Field, SQLModel

# Keys compare by code point: PostgreSQL's "C" collation (byte order of UTF-8, which is code-point
# order) rather than the database's linguistic default; SQLite's default BINARY already is.
INDEX_KEY = Text().with_variant(Text(collation="C"), "postgresql")


class IdentityRow(SQLModel, table=True):
    """Every subject that ever owned, registered, uploaded or tagged something."""

    __tablename__ = "identities"

    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(max_length=1024, unique=True)
    created_at: datetime


class JobRow(SQLModel, table=True):
    __tablename__ = "jobs"
    # An owner's jobs in id order: the keyset pages of an owner's batch query (POST /v1/query).
    __table_args__ = (Index("ix_jobs_owner_job", "owner_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=128, unique=True)
    jobid: str = Field(max_length=1024, unique=True)
    owner_id: int = Field(foreign_key="identities.id", index=True)
    registered_by_id: int = Field(foreign_key="identities.id")
    registered_at: datetime
    # Registered by a trusted service (L&B, WMS): authoritative over a registration by anyone
    # else for another owner, which it takes over (defect 11; docs/auth.md "Jobid squatting").
    registered_trusted: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )


class UploadRow(SQLModel, table=True):
    """A reservation of ``(job, class, name)`` and the state of its bytes.

    ``slot`` holds ``"<job id>/<class>/<name>"`` while the upload is in progress and NULL after it
    ended: the unique constraint on it is what makes "already stored or in progress" exclusive on
    every database (NULLs never collide).
    """

    __tablename__ = "uploads"

    id: str = Field(primary_key=True, max_length=64)
    job_id: int = Field(foreign_key="jobs.id", index=True)
    file_class: str = Field(max_length=64)
    name: str = Field(max_length=255)
    content_type: str | None = Field(default=None, max_length=255)
    declared_size: int | None = Field(default=None, sa_type=BigInteger)
    declared_sha256: str | None = Field(default=None, max_length=64)
    method: str = Field(max_length=16)
    state: str = Field(max_length=16, index=True)  # open | received | committed | aborted | expired
    slot: str | None = Field(default=None, max_length=512, unique=True)
    starter_id: int = Field(foreign_key="identities.id")
    created_at: datetime
    expires_at: datetime = Field(index=True)
    staging_key: str | None = Field(default=None, max_length=1024)
    received_size: int | None = Field(default=None, sa_type=BigInteger)
    received_sha256: str | None = Field(default=None, max_length=64)


class FileRow(SQLModel, table=True):
    """A committed file: write-once per ``(job, class, name)``."""

    __tablename__ = "files"
    __table_args__ = (
        UniqueConstraint("job_id", "file_class", "name", name="uq_files_job_class_name"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="jobs.id", index=True)
    file_class: str = Field(max_length=64)
    name: str = Field(max_length=255)
    size: int = Field(sa_type=BigInteger)
    sha256: str = Field(max_length=64)
    content_type: str | None = Field(default=None, max_length=255)
    uploader_id: int = Field(foreign_key="identities.id")
    upload_id: str | None = Field(default=None, max_length=64)
    committed_at: datetime
    location: str = Field(max_length=1024)
    # The first extraction problems (a bounded JSON list) and how many there were in all.
    extraction_errors: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    extraction_error_count: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )


class JobRecordRow(SQLModel, table=True):
    """The JobRecord (JRA2 statistics record) a file's plugin derived, stored at commit and at
    re-extraction so that reading it never re-parses the file. ``xml`` is NULL when the file
    yields no record; ``detail`` then says why."""

    __tablename__ = "job_records"

    file_id: int = Field(
        sa_column=Column(ForeignKey("files.id", ondelete="CASCADE"), primary_key=True)
    )
    xml: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    derived_at: datetime


class AttributeValueRow(SQLModel, table=True):
    """One value of one attribute of one job; appended, never updated (WORM).

    ``seq`` is the global change sequence (see ``repositories.allocate_seq``). Derived values of
    a file (origin FILE) point at it through ``file_id`` so that re-extraction can replace them.
    """

    __tablename__ = "attribute_values"
    __table_args__ = (
        # A job's values by name; with the key, a query checks a condition on one job from the
        # index alone (migration 0006 added index_key to the former (job_id, name) index).
        Index("ix_attribute_values_job_name_key", "job_id", "name", "index_key"),
        # Batch queries (POST /v1/query): a condition is a range of (name, index_key), and the
        # job ids come out of the index in order for keyset pagination.
        Index("ix_attribute_values_name_key_job", "name", "index_key", "job_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(sa_column=Column(BigInteger, nullable=False, unique=True))
    job_id: int = Field(foreign_key="jobs.id")
    name: str = Field(max_length=512, index=True)
    value: str = Field(sa_column=Column(Text, nullable=False))
    origin: str = Field(max_length=8)  # SYSTEM | USER | FILE
    origin_detail: str | None = Field(default=None, max_length=1024)
    timestamp: datetime
    recorded_at: datetime
    file_id: int | None = Field(
        default=None, sa_column=Column(ForeignKey("files.id"), nullable=True, index=True)
    )
    author_id: int | None = Field(default=None, foreign_key="identities.id")
    # The value's order-preserving key under its attribute's type (jp_primary/attributes/types.py)
    # or NULL when the text does not parse as that type.
    index_key: str | None = Field(default=None, sa_column=Column(INDEX_KEY, nullable=True))


class ChangeCounterRow(SQLModel, table=True):
    """The single row holding the last allocated ``seq`` (its row lock orders commits)."""

    __tablename__ = "change_counter"

    id: int = Field(primary_key=True)
    last_seq: int = Field(sa_column=Column(BigInteger, nullable=False))


class DoorGrantRow(SQLModel, table=True):
    """One-time credentials of the FTP upload door, shared by the API (issues) and the door."""

    __tablename__ = "door_grants"

    user: str = Field(primary_key=True, max_length=64)
    password_sha256: str = Field(max_length=64)
    upload_id: str = Field(foreign_key="uploads.id", index=True, max_length=64)
    target: str = Field(max_length=1024)
    deadline: datetime
    used_at: datetime | None = None


class QuarantineRow(SQLModel, table=True):
    """What a non-trusted registrant had stored in a job a trusted registration took over.

    Kept for an admin until ``retain_until`` (``jp-primary quarantine``), never shown as the
    job's data. ``files``, ``attribute_values`` and ``uploads`` are JSON lists; a file's
    ``location`` is where its bytes are kept (moved under ``quarantine/`` after the takeover).
    """

    __tablename__ = "quarantine"

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="jobs.id", index=True)
    jobid: str = Field(max_length=1024)  # the jobid the squatter registered
    squatter: str = Field(max_length=1024)  # the owner of the squatting registration
    squatter_registrar: str = Field(max_length=1024)
    squatter_registered_at: datetime
    claimed_by: str = Field(max_length=1024)  # the trusted registrar
    new_owner: str = Field(max_length=1024)
    quarantined_at: datetime
    retain_until: datetime = Field(index=True)
    files: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    attribute_values: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    uploads: str = Field(default="[]", sa_column=Column(Text, nullable=False))


class RetractedValueRow(SQLModel, table=True):
    """A value removed from a job (by a takeover): feeds announce ``seq`` as retracted together
    with the changes at ``announced_seq`` (the first seq of the values that replaced it)."""

    __tablename__ = "retracted_values"

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    job_id: int = Field(foreign_key="jobs.id", index=True)
    announced_seq: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    retracted_at: datetime
    reason: str = Field(max_length=32)


class FeedRow(SQLModel, table=True):
    """A subscription of an index server (issue 8; docs/feeds.md).

    Two cursors: the *build* state (``phase``, ``history_after_job``, ``cursor_seq``,
    ``built_batch``) says how far batches have been cut from the change sequence; ``acked_batch``
    says how far the subscriber has acknowledged them. Batches between the two are kept in
    ``feed_batches`` so a redelivery repeats the same number with the same content. A push
    feed is worked by the process holding its lease (``lease_owner`` until ``lease_until``).
    """

    __tablename__ = "feeds"

    id: str = Field(primary_key=True, max_length=32)
    owner: str = Field(max_length=1024, index=True)
    destination: str | None = Field(default=None, max_length=2048)
    attributes: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of names
    conditions: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of conditions
    history: bool
    continuous: bool
    notify_removed: bool
    snapshot_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    phase: str = Field(max_length=16, index=True)  # history | continuous | done
    history_after_job: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    cursor_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    built_batch: int = Field(default=0)
    acked_batch: int = Field(default=0)
    history_done_batch: int | None = Field(default=None)
    created_at: datetime
    ttl_seconds: int
    expires_at: datetime = Field(index=True)
    acked_seq: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    last_delivery_at: datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = None
    lease_owner: str | None = Field(default=None, max_length=128)
    lease_until: datetime | None = None


class FeedBatchRow(SQLModel, table=True):
    """A batch cut for a feed and not yet acknowledged (or, in pull mode, the last one
    acknowledged, kept so that repeating a token repeats its answer)."""

    __tablename__ = "feed_batches"

    feed_id: str = Field(
        sa_column=Column(ForeignKey("feeds.id", ondelete="CASCADE"), primary_key=True)
    )
    number: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    history_done: bool
    body: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of records
    jobs: int
    last_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_at: datetime


class FeedSentJobRow(SQLModel, table=True):
    """A job whose full record a continuous feed has sent (later changes send new values only)."""

    __tablename__ = "feed_sent_jobs"

    feed_id: str = Field(
        sa_column=Column(ForeignKey("feeds.id", ondelete="CASCADE"), primary_key=True)
    )
    job_id: int = Field(
        sa_column=Column(ForeignKey("jobs.id"), primary_key=True, autoincrement=False)
    )
