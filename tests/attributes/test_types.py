"""Attribute types: parsing, normalization, and index keys that keep the order of the values."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jp_primary.attributes.types import (
    BOOLEAN,
    FLOAT,
    INTEGER,
    KEY_CHARS,
    LB_DONE_CODE,
    LB_STATE,
    LB_STATES,
    STRING,
    TIMESTAMP,
    TYPES,
    XML,
    type_named,
)
from jp_primary.plugins.lb.status import DoneCode, State


def _sign(x: object, y: object) -> int:
    return (x > y) - (x < y)  # type: ignore[operator]


def test_integers_compare_as_numbers_not_as_text() -> None:
    assert "10" < "9"  # what a string column would say
    assert INTEGER.compare("10", "9") == 1
    assert INTEGER.index_key("10") > INTEGER.index_key("9")  # type: ignore[operator]
    assert INTEGER.index_key("-10") < INTEGER.index_key("-9")  # type: ignore[operator]
    assert INTEGER.index_key("-1") < INTEGER.index_key("0") < INTEGER.index_key("1")  # type: ignore[operator]


def test_integer_normalization_and_refusals() -> None:
    assert INTEGER.normalize(" +007 ") == "7"
    assert INTEGER.index_key("007") == INTEGER.index_key("7")
    assert INTEGER.index_key("-0") == INTEGER.index_key("0")
    for bad in ("", "1.5", "1_000", "0x10", "\u0663", "1e3", "one"):
        assert INTEGER.index_key(bad) is None
        with pytest.raises(ValueError, match="not a decimal integer"):
            INTEGER.parse(bad)
    with pytest.raises(ValueError, match="at most 120 digits"):
        INTEGER.parse("1" * 121)
    assert len(INTEGER.index_key("-" + "9" * 120) or "") <= KEY_CHARS


@given(st.integers(min_value=-(10**119), max_value=10**119), st.integers(-(10**119), 10**119))
def test_integer_keys_preserve_order(a: int, b: int) -> None:
    ka, kb = INTEGER.index_key(str(a)), INTEGER.index_key(str(b))
    assert ka is not None
    assert kb is not None
    assert _sign(ka, kb) == _sign(a, b)
    assert INTEGER.parse(str(a)) == a


finite = st.floats(allow_nan=False, allow_infinity=False)


@given(finite, finite)
def test_float_keys_preserve_order(a: float, b: float) -> None:
    ka, kb = FLOAT.index_key(repr(a)), FLOAT.index_key(repr(b))
    assert ka is not None
    assert kb is not None
    assert _sign(ka, kb) == _sign(a, b)


def test_float_parsing() -> None:
    assert FLOAT.index_key("-0") == FLOAT.index_key("0.0")
    assert FLOAT.normalize("1e3") == "1000.0"
    assert FLOAT.parse(".5") == 0.5
    for bad in ("nan", "inf", "-Infinity", "1e999", "1_0", "", "x"):
        assert FLOAT.index_key(bad) is None, bad
    assert math.isclose(FLOAT.parse(" 2.5 "), 2.5)


def test_timestamps_in_any_zone_are_one_instant_in_utc() -> None:
    same = (
        "2026-11-29T10:00:00Z",
        "2026-11-29T11:00:00+01:00",
        "2026-11-29T05:00:00-05:00",
        "2026-11-29T10:00:00",
        "2026-11-29T10:00:00.000000Z",
        "2026-11-29 10:00:00+00:00",
    )
    keys = {TIMESTAMP.index_key(text) for text in same}
    assert keys == {"2026-11-29T10:00:00.000000Z"}
    assert TIMESTAMP.normalize("2026-11-30T00:30:00+01:00") == "2026-11-29T23:30:00.000000Z"
    # Later in the day in UTC although the local text reads earlier.
    assert TIMESTAMP.compare("2026-11-29T09:00:00-05:00", "2026-11-29T12:00:00Z") == 1
    # The L&B plugin's zone-less dates and the HTCondor plugin's second-precision ones.
    assert TIMESTAMP.index_key("2024-03-01T10:03:00.123456") == "2024-03-01T10:03:00.123456Z"
    assert TIMESTAMP.index_key("2024-03-01T10:03:00Z") == "2024-03-01T10:03:00.000000Z"
    for bad in ("", "yesterday", "1700000000", "2026-13-01T00:00:00Z", "29/11/2026"):
        assert TIMESTAMP.index_key(bad) is None, bad
    with pytest.raises(ValueError, match="not a timestamp"):
        TIMESTAMP.parse("soon")


# hypothesis takes naive bounds and attaches the zones itself.
instants = st.datetimes(
    min_value=datetime(1, 1, 2),  # noqa: DTZ001
    max_value=datetime(9999, 12, 30),  # noqa: DTZ001
    timezones=st.just(UTC),
)
zones = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@given(instants, instants, zones, zones)
def test_timestamp_keys_preserve_order_across_zones(
    a: datetime, b: datetime, zone_a: timezone, zone_b: timezone
) -> None:
    text_a, text_b = a.astimezone(zone_a).isoformat(), b.astimezone(zone_b).isoformat()
    ka, kb = TIMESTAMP.index_key(text_a), TIMESTAMP.index_key(text_b)
    assert ka is not None
    assert kb is not None
    assert _sign(ka, kb) == _sign(a, b)
    assert TIMESTAMP.parse(TIMESTAMP.normalize(text_a)) == a


def test_booleans() -> None:
    assert {BOOLEAN.normalize(t) for t in ("true", "1", "YES", " True ")} == {"true"}
    assert {BOOLEAN.normalize(t) for t in ("false", "0", "no")} == {"false"}
    assert BOOLEAN.index_key("false") < BOOLEAN.index_key("true")  # type: ignore[operator]
    assert BOOLEAN.index_key("maybe") is None


def test_lb_states_are_the_lb_plugins_state_list_in_order() -> None:
    assert [state.label for state in State] == list(LB_STATES)
    keys = [LB_STATE.index_key(label) for label in LB_STATES]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    assert LB_STATE.index_key("DONE") == LB_STATE.index_key("Done") == LB_STATE.index_key("6")
    assert LB_STATE.normalize("cleared") == "Cleared"
    assert LB_STATE.compare("Cleared", "Done") == 1  # by the list, not alphabetically
    assert LB_STATE.index_key("Finished") is None
    assert LB_STATE.index_key("12") is None


def test_lb_done_codes_are_integers_with_names() -> None:
    assert [code.name for code in DoneCode] == list(LB_DONE_CODE.labels)  # type: ignore[attr-defined]
    assert LB_DONE_CODE.index_key("OK") == LB_DONE_CODE.index_key("0")
    assert LB_DONE_CODE.index_key("FAILED") > LB_DONE_CODE.index_key("0")  # type: ignore[operator]
    assert LB_DONE_CODE.normalize("2") == "CANCELLED"


def test_strings_order_by_code_point_and_keys_are_bounded_prefixes() -> None:
    assert STRING.index_key("abc") == "abc"
    assert STRING.index_key("B") < STRING.index_key("a")  # type: ignore[operator]
    long = "x" * (KEY_CHARS + 10)
    assert STRING.index_key(long) == "x" * KEY_CHARS
    assert STRING.normalize(" spaced ") == " spaced "


@given(st.text(max_size=150), st.text(max_size=150))
def test_string_keys_never_invert_order(a: str, b: str) -> None:
    ka, kb = STRING.index_key(a), STRING.index_key(b)
    assert ka is not None
    assert kb is not None
    if a < b:
        assert ka <= kb
    if ka < kb:
        assert a < b
    if len(a) <= KEY_CHARS and len(b) <= KEY_CHARS:
        assert _sign(ka, kb) == _sign(a, b)


def test_xml_fragments_are_checked_for_well_formedness() -> None:
    fragment = '<item name="Done">2024-03-01T10:03:00.000000</item>\n<item name="Ready">x</item>'
    assert XML.normalize(fragment) == fragment
    assert XML.index_key(fragment) is not None
    assert XML.index_key("plain text is a fragment too") is not None
    assert XML.index_key("<open>") is None
    with pytest.raises(ValueError, match="well-formed"):
        XML.parse("<a></b>")
    entity_bomb = '<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    assert XML.index_key(entity_bomb) is None
    assert not XML.ordered
    assert not XML.textual


def test_types_are_found_by_name() -> None:
    assert set(TYPES) == {
        "string",
        "integer",
        "float",
        "timestamp",
        "boolean",
        "lb_state",
        "lb_done_code",
        "xml",
    }
    assert type_named("integer") is INTEGER
    with pytest.raises(KeyError, match="known: string"):
        type_named("decimal")
