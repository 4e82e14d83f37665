"""feed batches: their bodies compressed with lz4 where PostgreSQL has it

A history batch is up to 1 MiB of JSON, stored once and usually never read back; pglz spends
about twice lz4's time compressing it (PostgreSQL 14+ built with lz4, as the common packages
are). Elsewhere (SQLite, a PostgreSQL without lz4) nothing changes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 06:15:00.000000
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0008'
down_revision: Union[str, None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_HAS_LZ4 = sa.text(
    "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression'"
    " AND 'lz4' = ANY(enumvals)"
)


def _set(method: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or bind.execute(_HAS_LZ4).first() is None:
        return
    op.execute(f"ALTER TABLE feed_batches ALTER COLUMN body SET COMPRESSION {method}")


def upgrade() -> None:
    _set("lz4")


def downgrade() -> None:
    _set("pglz")
