from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(at: datetime) -> str:
    """RFC 3339 UTC with microseconds, the one time format of the API and of time values."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
