"""User-log event times (``EventTime`` of the bindings) to microseconds since the epoch (pure).

HTCondor writes ``YYYY-MM-DDThh:mm:ss[.fff]`` in the submit machine's local time, without a
zone, unless configured to write UTC, which it marks with ``Z``. A time without a zone is read
in the server's local time zone (run the service with the submit side's ``TZ`` if they differ);
a ``Z`` time is UTC. (The bindings' own ``JobEvent.timestamp`` reads ``Z`` times as local ones,
and parses each time with ``strptime``, which costs more than the rest of reading an event.)
"""

from __future__ import annotations

import calendar
import time

_HOURS: dict[str, int] = {}  # "YYYY-MM-DDThh" (+ "Z") to the epoch seconds of that hour
_HOURS_KEPT = 65_536


def event_time_us(text: str) -> int:
    """``2024-03-01T10:05:30`` (local), ``...Z`` (UTC), optionally with fractional seconds."""
    if len(text) == 19:  # the common spelling: the hour is known after its first event
        hour = _HOURS.get(text[:13])
        if hour is not None and text[13] == ":" and text[16] == ":":
            try:
                return (hour + int(text[14:16]) * 60 + int(text[17:19])) * 1_000_000
            except ValueError:
                pass  # not digits: the full parse below says so
    utc = text.endswith("Z")
    body = text[:-1] if utc else text
    seconds_text, _, fraction = body.partition(".")
    if len(seconds_text) != 19 or seconds_text[10] != "T":
        raise ValueError(f"not an event time: {text[:40]!r}")
    hour_key = seconds_text[:13] + ("Z" if utc else "")
    hour = _HOURS.get(hour_key)
    if hour is None:
        fields = (
            int(seconds_text[0:4]),
            int(seconds_text[5:7]),
            int(seconds_text[8:10]),
            int(seconds_text[11:13]),
            0,
            0,
            0,
            0,
            -1,
        )
        hour = calendar.timegm(fields) if utc else int(time.mktime(fields))
        if len(_HOURS) >= _HOURS_KEPT:
            _HOURS.clear()
        _HOURS[hour_key] = hour
    within = int(seconds_text[14:16]) * 60 + int(seconds_text[17:19])
    micros = int(fraction.ljust(6, "0")[:6]) if fraction.isdigit() else 0
    return (hour + within) * 1_000_000 + micros
