"""Engines for the index's own database (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

from sqlalchemy import Engine

from jp_primary.engines import create_sql_engine


def create_index_engine(url: str, pool_size: int = 5) -> Engine:
    return create_sql_engine(url, pool_size)
