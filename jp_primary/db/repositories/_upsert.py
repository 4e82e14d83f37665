"""Dialect-aware ``INSERT ... ON CONFLICT DO NOTHING`` (SQLite and PostgreSQL both have it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel


def insert_ignore(session: Session, table: str, values: dict[str, Any], conflict: list[str]) -> Any:
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    target = SQLModel.metadata.tables[table]
    return module.insert(target).values(**values).on_conflict_do_nothing(index_elements=conflict)
