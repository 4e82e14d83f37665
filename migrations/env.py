"""Alembic environment: the URL comes from the caller (``jp_primary.db.migrate``)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import jp_primary.db.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from jp_primary.db.session import create_db_engine

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = create_db_engine(url, pool_size=1)
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        driver = connection.connection.driver_connection
        if sqlite and driver is not None:
            # Batch mode rebuilds a table (create, copy, drop, rename): with foreign keys enforced
            # the DROP fails once other tables' rows refer to it. Off for the migration (a PRAGMA
            # that only takes effect outside a transaction, so it goes to the driver's connection
            # before SQLAlchemy begins one), checked once it is done.
            driver.execute("PRAGMA foreign_keys=OFF")
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        if sqlite and driver is not None:
            broken = driver.execute("PRAGMA foreign_key_check").fetchall()
            driver.execute("PRAGMA foreign_keys=ON")
            if broken:
                raise RuntimeError(f"the migration left dangling references: {broken[:5]}")
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
