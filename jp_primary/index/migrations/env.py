"""Alembic environment of the index server's own schema (URL from ``jp_primary.index.migrate``)."""

from __future__ import annotations

from alembic import context

from jp_primary.index.migrate import VERSION_TABLE
from jp_primary.index.session import create_index_engine
from jp_primary.index.tables import metadata

config = context.config


def _ours(name: str | None) -> bool:
    return name is not None and name.startswith("index_")


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = create_index_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table=VERSION_TABLE,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            # The primary's tables may share the database: they are not ours to compare.
            include_name=lambda name, kind, _parent: kind != "table" or _ours(name),
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
