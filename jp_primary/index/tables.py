"""The index server's tables (SQLAlchemy Core on their own ``MetaData``).

Kept apart from the primary's models: the primary's migrations never see them, and the index's
migrations (``index/migrations``, version table ``jp_index_alembic_version``) never see the
primary's. Changes go through a new revision there; a test compares these with the migrations.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# SQLite makes only an INTEGER PRIMARY KEY an auto-incrementing row id.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Index keys compare by code point on both databases: SQLite's BINARY collation does; PostgreSQL
# needs the "C" collation (a locale collation would order "Z" after "a").
KeyText = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
Stamp = sa.DateTime(timezone=True)

feeds = sa.Table(
    "index_feeds",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),  # the feed's name in the configuration
    sa.Column("source", sa.String(1024), nullable=False),  # the primary storage's URL
    sa.Column("fingerprint", sa.String(64), nullable=False),  # what was asked (config.py)
    sa.Column("remote_id", sa.String(255)),  # feed_id on the primary; NULL: subscribe
    sa.Column("secret", sa.String(64)),  # the push destination's capability (URL path)
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("phase", sa.String(16), nullable=False),  # new | history | live | failing | expired
    sa.Column("expires_at", Stamp),
    sa.Column("refresh_at", Stamp),
    sa.Column("retry_at", Stamp),
    sa.Column("history_done", sa.Boolean, nullable=False, default=False),
    sa.Column("last_batch", sa.BigInteger),  # push: the last batch applied (acknowledged)
    sa.Column("pull_token", sa.Text),  # pull: where the next /changes call starts
    sa.Column("failures", sa.Integer, nullable=False, default=0),
    sa.Column("subscriptions", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text),
    sa.Column("last_error_at", Stamp),
    sa.Column("last_delivery_at", Stamp),
    sa.Column("last_seq", sa.BigInteger),  # the newest change (primary's seq) applied
    sa.Column("records", sa.BigInteger, nullable=False, default=0),  # records applied
    sa.Column("remote_lag", sa.Float),  # the primary's own view of this feed's lag (seconds)
    sa.Column("subscribed_at", Stamp),
)

jobs = sa.Table(
    "index_jobs",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(1024), nullable=False),
    sa.Column("jobid", sa.String(1024), nullable=False),
    sa.Column("key", sa.String(128), nullable=False),
    sa.Column("owner", sa.String(1024), nullable=False),
    sa.UniqueConstraint("source", "jobid", name="uq_index_jobs_source_jobid"),
    sa.Index("ix_index_jobs_owner", "owner"),
    sa.Index("ix_index_jobs_jobid", "jobid"),
)

# Which feeds delivered a job: a `removed` notice drops the job only when no other feed has it.
feed_jobs = sa.Table(
    "index_feed_jobs",
    metadata,
    sa.Column("feed", sa.String(64), sa.ForeignKey("index_feeds.name"), primary_key=True),
    sa.Column(
        "job_id", BigId, sa.ForeignKey("index_jobs.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Index("ix_index_feed_jobs_job", "job_id"),
)

values = sa.Table(
    "index_values",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("job_id", BigId, sa.ForeignKey("index_jobs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(1024), nullable=False),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("key", KeyText),  # the type's order-preserving key; NULL: not of its type
    sa.Column("origin", sa.String(16), nullable=False),
    sa.Column("origin_detail", sa.Text),
    sa.Column("timestamp", sa.String(64)),  # as the primary sent it (RFC 3339)
    sa.Column("seq", sa.BigInteger, nullable=False),  # the primary's change sequence
    # A repeat of (job, name, seq) -- a redelivered batch, a re-subscription with history -- is
    # dropped: this is the deduplication the feed semantics promise a receiver can do.
    sa.UniqueConstraint("job_id", "name", "seq", name="uq_index_values_job_name_seq"),
    sa.Index("ix_index_values_name_key", "name", "key", "job_id"),
    sa.Index("ix_index_values_job_seq", "job_id", "seq"),
    # A query's per-job probes (EXISTS: name, key range) read this index only (migration i0002).
    sa.Index("ix_index_values_job_name_key", "job_id", "name", "key"),
)
