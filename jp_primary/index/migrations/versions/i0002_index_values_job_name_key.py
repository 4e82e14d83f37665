"""index_values: a covering (job_id, name, key) index for the per-job probes

Revision ID: i0002
Revises: i0001
Create Date: 2026-11-30 03:35:00.000000

A query checks each candidate job's other conditions with ``EXISTS`` among its values (``name``
and a range of ``key``). Through ``uq_index_values_job_name_seq`` each probe also reads the value's
row for its key: a random read per walked job once the database is out of the page cache. With
the key in the index the probe reads the index only.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "i0002"
down_revision: str | None = "i0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("index_values", schema=None) as batch_op:
        batch_op.create_index("ix_index_values_job_name_key", ["job_id", "name", "key"])


def downgrade() -> None:
    with op.batch_alter_table("index_values", schema=None) as batch_op:
        batch_op.drop_index("ix_index_values_job_name_key")
