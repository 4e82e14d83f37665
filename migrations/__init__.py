"""The Alembic environment (env.py) and revisions (versions/): the only way the schema changes.

This directory sits at the repository root and ships inside the wheel as the package
``jp_primary._migrations`` (setup.py maps it); ``jp_primary.db.migrate`` finds it through that name,
so ``jp-primary migrate`` works from a source checkout and from an installed wheel alike.
"""
