"""jobid takeover: trusted registrations, quarantine, retracted values

Revision ID: 0005
Revises: 0002
Create Date: 2026-11-29 20:30:00.000000
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = '0005'
down_revision: Union[str, None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('registered_trusted', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    # Only trusted services register jobs for another owner: those registrations were trusted.
    op.execute("UPDATE jobs SET registered_trusted = (registered_by_id <> owner_id)")
    op.create_table('quarantine',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('jobid', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('squatter', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('squatter_registrar', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('squatter_registered_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('new_owner', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('quarantined_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('retain_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('files', sa.Text(), nullable=False),
    sa.Column('attribute_values', sa.Text(), nullable=False),
    sa.Column('uploads', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quarantine_job_id'), ['job_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_quarantine_retain_until'), ['retain_until'], unique=False)

    op.create_table('retracted_values',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('announced_seq', sa.BigInteger(), nullable=False),
    sa.Column('retracted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('retracted_values', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_retracted_values_announced_seq'), ['announced_seq'], unique=False)
        batch_op.create_index(batch_op.f('ix_retracted_values_job_id'), ['job_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('retracted_values', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_retracted_values_job_id'))
        batch_op.drop_index(batch_op.f('ix_retracted_values_announced_seq'))
    op.drop_table('retracted_values')
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quarantine_retain_until'))
        batch_op.drop_index(batch_op.f('ix_quarantine_job_id'))
    op.drop_table('quarantine')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('registered_trusted')
