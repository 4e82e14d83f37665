"""Dialect-aware ``INSERT ... ON CONFLICT DO NOTHING`` (SQLite and PostgreSQL both have it).

Statements are built once per (dialect, table, conflict columns) with bound parameters and run
on the session's connection as Core statements: the hot paths (registration, tags) pay neither
for building statements nor for the ORM's bulk-persistence layer.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel


@cache
def _statement(
    dialect: str, table: str, columns: tuple[str, ...], conflict: tuple[str, ...]
) -> Any:
    module = postgresql if dialect == "postgresql" else sqlite
    target = SQLModel.metadata.tables[table]
    stmt = module.insert(target).values({c: bindparam(c) for c in columns})
    # No conflict columns: any unique constraint of the table (both databases accept that).
    elements = list(conflict) or None
    return stmt.on_conflict_do_nothing(index_elements=elements).returning(target.c.id)


def insert_ignore(
    session: Session, table: str, values: dict[str, Any], conflict: list[str]
) -> int | None:
    """Insert a row unless it conflicts; the new row's id, or None when nothing was written."""
    dialect = session.get_bind().dialect.name
    stmt = _statement(dialect, table, tuple(values), tuple(conflict))
    new_id = session.connection().execute(stmt, values).scalar()
    return None if new_id is None else int(new_id)


def insert_unless_conflict(session: Session, table: str, values: dict[str, Any]) -> Any:
    """Insert a row unless it collides with any unique constraint; the new row's id, or None.

    A Core statement: no savepoint, no flush, no ORM object, and a refused row leaves the
    transaction usable on both databases."""
    dialect = session.get_bind().dialect.name
    stmt = _statement(dialect, table, tuple(values), ())
    return session.connection().execute(stmt, values).scalar()
