"""The database's own liveness check."""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session


def ping(session: Session) -> None:
    """A round trip to the database (raises when it does not answer)."""
    session.execute(text("SELECT 1"))
