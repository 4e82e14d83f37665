"""attribute index keys: typed, order-preserving keys for batch queries

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 23:40:00.000000
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0006'
down_revision: Union[str, None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# The key column compares by code point: "C" on PostgreSQL, SQLite's BINARY default elsewhere.
INDEX_KEY = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
STRING_KEY_CHARS = 128  # jp_primary.attributes.types.KEY_CHARS when this revision was written
BATCH = 5000


def upgrade() -> None:
    with op.batch_alter_table('attribute_values', schema=None) as batch_op:
        batch_op.add_column(sa.Column('index_key', INDEX_KEY, nullable=True))
    _fill_keys()
    with op.batch_alter_table('attribute_values', schema=None) as batch_op:
        batch_op.create_index(
            'ix_attribute_values_name_key_job', ['name', 'index_key', 'job_id'], unique=False
        )
        # The former (job_id, name) index with the key: a condition is checked on one job from
        # the index alone.
        batch_op.drop_index('ix_attribute_values_job_name')
        batch_op.create_index(
            'ix_attribute_values_job_name_key', ['job_id', 'name', 'index_key'], unique=False
        )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index('ix_jobs_owner_job', ['owner_id', 'id'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        # How often each (name, key) pair occurs: without it the planner multiplies the two
        # columns' selectivities as if independent and misjudges "lb:status = Done" by 10x.
        op.execute(
            "CREATE STATISTICS st_attribute_values_name_key (mcv, ndistinct, dependencies) "
            "ON name, index_key FROM attribute_values"
        )
        op.execute("ALTER STATISTICS st_attribute_values_name_key SET STATISTICS 1000")
        op.execute("ANALYZE attribute_values")


def _fill_keys() -> None:
    """Key the values already stored: strings (most of them) in one UPDATE, the names a plugin
    or the system declares of another type in Python, through the attribute type library."""
    from jp_primary.attributes.types import STRING
    from jp_primary.plugins.registry import PluginRegistry

    bind = op.get_bind()
    bind.execute(
        sa.text("UPDATE attribute_values SET index_key = substr(value, 1, :n)"),
        {"n": STRING_KEY_CHARS},
    )
    types = PluginRegistry().attribute_types()
    names = [row[0] for row in bind.execute(sa.text("SELECT DISTINCT name FROM attribute_values"))]
    for name in names:
        kind = types.type_of(name)
        if kind is STRING:
            continue
        last = 0
        while True:
            rows = bind.execute(
                sa.text(
                    "SELECT id, value FROM attribute_values WHERE name = :name AND id > :last "
                    "ORDER BY id LIMIT :batch"
                ),
                {"name": name, "last": last, "batch": BATCH},
            ).all()
            if not rows:
                break
            bind.execute(
                sa.text("UPDATE attribute_values SET index_key = :key WHERE id = :id"),
                [{"id": row[0], "key": kind.index_key(row[1])} for row in rows],
            )
            last = rows[-1][0]


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP STATISTICS IF EXISTS st_attribute_values_name_key")
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_owner_job')
    with op.batch_alter_table('attribute_values', schema=None) as batch_op:
        batch_op.drop_index('ix_attribute_values_job_name_key')
        batch_op.create_index('ix_attribute_values_job_name', ['job_id', 'name'], unique=False)
        batch_op.drop_index('ix_attribute_values_name_key_job')
        batch_op.drop_column('index_key')
