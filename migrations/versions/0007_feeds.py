"""feeds to index servers: subscriptions, unacknowledged batches, jobs sent

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 23:40:00.000000
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = '0007'
down_revision: Union[str, None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('feeds',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('destination', sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=True),
    sa.Column('attributes', sa.Text(), nullable=False),
    sa.Column('conditions', sa.Text(), nullable=False),
    sa.Column('history', sa.Boolean(), nullable=False),
    sa.Column('continuous', sa.Boolean(), nullable=False),
    sa.Column('notify_removed', sa.Boolean(), nullable=False),
    sa.Column('snapshot_seq', sa.BigInteger(), nullable=False),
    sa.Column('phase', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('history_after_job', sa.BigInteger(), nullable=False),
    sa.Column('cursor_seq', sa.BigInteger(), nullable=False),
    sa.Column('built_batch', sa.Integer(), nullable=False),
    sa.Column('acked_batch', sa.Integer(), nullable=False),
    sa.Column('history_done_batch', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('ttl_seconds', sa.Integer(), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('acked_seq', sa.BigInteger(), nullable=False),
    sa.Column('last_delivery_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('lease_owner', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('lease_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feeds_owner'), ['owner'], unique=False)
        batch_op.create_index(batch_op.f('ix_feeds_phase'), ['phase'], unique=False)
        batch_op.create_index(batch_op.f('ix_feeds_expires_at'), ['expires_at'], unique=False)

    op.create_table('feed_batches',
    sa.Column('feed_id', sa.String(length=32), nullable=False),
    sa.Column('number', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('history_done', sa.Boolean(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('jobs', sa.Integer(), nullable=False),
    sa.Column('last_seq', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['feed_id'], ['feeds.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('feed_id', 'number')
    )
    op.create_table('feed_sent_jobs',
    sa.Column('feed_id', sa.String(length=32), nullable=False),
    sa.Column('job_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.ForeignKeyConstraint(['feed_id'], ['feeds.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ),
    sa.PrimaryKeyConstraint('feed_id', 'job_id')
    )


def downgrade() -> None:
    op.drop_table('feed_sent_jobs')
    op.drop_table('feed_batches')
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feeds_expires_at'))
        batch_op.drop_index(batch_op.f('ix_feeds_phase'))
        batch_op.drop_index(batch_op.f('ix_feeds_owner'))
    op.drop_table('feeds')
