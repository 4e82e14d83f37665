"""The shared time formats: the API's, the HTCondor plugin's and the L&B plugin's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from jp_primary.timefmt import from_micros, micros_text, rfc3339, rfc3339_seconds

AT = datetime(2024, 3, 1, 10, 5, 30, 123456, tzinfo=UTC)
AT_US = 1_709_287_530_123_456  # AT in microseconds since the epoch


def test_rfc3339_is_utc_with_microseconds_whatever_the_zone() -> None:
    assert rfc3339(AT) == "2024-03-01T10:05:30.123456Z"
    assert rfc3339(AT.astimezone(timezone(timedelta(hours=2)))) == "2024-03-01T10:05:30.123456Z"


def test_rfc3339_seconds_drops_the_fraction() -> None:
    assert rfc3339_seconds(AT) == "2024-03-01T10:05:30Z"
    assert rfc3339_seconds(AT.astimezone(timezone(timedelta(hours=-5)))) == "2024-03-01T10:05:30Z"


def test_micros_round_trip_and_text() -> None:
    assert from_micros(AT_US) == AT
    assert micros_text(AT_US) == "2024-03-01T10:05:30.123456"
    # The cached minute prefix must not leak into the next minute or the epoch's first second.
    assert micros_text(AT_US + 30_000_000) == "2024-03-01T10:06:00.123456"
    assert micros_text(0) == "1970-01-01T00:00:00.000000"
    assert micros_text(59_999_999) == "1970-01-01T00:00:59.999999"
