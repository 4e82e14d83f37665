"""The time formats of stored values and of the API, in one place for services and plugins.

Plugins import this module (not ``services``). Every format is UTC:

* ``rfc3339`` — ``2024-03-01T10:03:00.000000Z``: the API and the system attributes;
* ``rfc3339_seconds`` — ``2024-03-01T10:03:00Z``: the HTCondor log plugin's values;
* ``micros_text`` — ``2024-03-01T10:03:00.123456`` (no zone, as the original L&B plugin wrote
  dates) from integer microseconds since the epoch, which the L&B replay counts in.
"""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(at: datetime) -> str:
    """RFC 3339 UTC with microseconds, the one time format of the API and of time values."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339_seconds(at: datetime) -> str:
    """RFC 3339 UTC to the second."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_micros(time_us: int) -> datetime:
    """Microseconds since the epoch to an aware UTC datetime."""
    return datetime.fromtimestamp(time_us // 1_000_000, UTC).replace(
        microsecond=time_us % 1_000_000
    )


def micros_text(time_us: int) -> str:
    """``YYYY-MM-DDThh:mm:ss.uuuuuu`` in UTC, from microseconds since the epoch."""
    # A job's events come in bursts: the text up to the minute is looked up, not formatted.
    minute, within = divmod(time_us, 60_000_000)
    prefix = _MINUTE_TEXTS.get(minute) or _minute_text(minute)
    seconds, micros = divmod(within, 1_000_000)
    return f"{prefix}{seconds:02d}.{micros:06d}"


_MINUTE_TEXTS: dict[int, str] = {}


def _minute_text(minute: int) -> str:
    text = from_micros(minute * 60_000_000).strftime("%Y-%m-%dT%H:%M:")
    if len(_MINUTE_TEXTS) >= 65_536:
        _MINUTE_TEXTS.clear()  # bounded; the minutes of the current job are learnt again
    _MINUTE_TEXTS[minute] = text
    return text
