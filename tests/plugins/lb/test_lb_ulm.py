"""The ULM line parser: quoting, escapes, prefixes, keys, errors with line numbers."""

from __future__ import annotations

import calendar
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jp_primary.plugins.lb.events import event_from_fields, parse_ulm_date
from jp_primary.plugins.lb.ulm import (
    ULMError,
    _parse_general,
    escape,
    format_line,
    parse_line,
    unescape,
)

from .conftest import HEADER


def test_bare_and_quoted_values() -> None:
    fields = parse_line(HEADER + ' DG.DONE.STATUS_CODE="OK" DG.DONE.EXIT_CODE="0" ')
    assert fields["DATE"] == "20080928054721.553524"
    assert fields["LVL"] == "SYSTEM"
    assert fields["DG.PRIORITY"] == "0"
    assert fields["HOST"] == "wms.example.org"
    assert fields["DG.DONE.STATUS_CODE"] == "OK"
    assert fields["DG.SRC_INSTANCE"] == ""


def test_escapes_are_undone_including_newline() -> None:
    line = HEADER + r' DG.DONE.REASON="say \"hi\"\nC:\\dir\\" DG.DONE.STATUS_CODE="OK"'
    fields = parse_line(line)
    assert fields["DG.DONE.REASON"] == 'say "hi"\nC:\\dir\\'
    assert fields["DG.DONE.STATUS_CODE"] == "OK"


def test_keys_are_case_insensitive() -> None:
    fields = parse_line('date=20080928054721.553524 Host="h" dg.Evnt="Done"')
    assert fields == {"DATE": "20080928054721.553524", "HOST": "h", "DG.EVNT": "Done"}


def test_arrived_prefix_is_a_key() -> None:
    fields = parse_line("DG.ARRIVED=20051010204845.000000 " + HEADER)
    assert fields["DG.ARRIVED"] == "20051010204845.000000"
    assert fields["DG.EVNT"] == "Done"


def test_first_of_duplicate_keys_wins() -> None:
    assert parse_line('A="1" A="2"') == {"A": "1"}


def test_nil_and_empty_values_are_null_in_events() -> None:
    line = HEADER + ' DG.DONE.STATUS_CODE="OK" DG.DONE.REASON="(nil)" DG.DONE.EXIT_CODE=""'
    event = event_from_fields(parse_line(line), 1)
    assert event.get("reason") is None
    assert event.get("exit_code") is None
    assert event.get("status_code") == "OK"
    assert event.src_instance is None


def test_unknown_keys_are_ignored_by_events() -> None:
    line = HEADER + ' DG.DONE.STATUS_CODE="OK" DG.DONE.FUTURE_FIELD="x" SOMETHING="else"'
    event = event_from_fields(parse_line(line), 1)
    assert "future_field" not in event.fields
    assert event.type == "Done"


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ('DATE=1 HOST="unterminated', "unterminated quoted value"),
        ('DATE=1 HOST=ab"c" X="y"', "misplaced quote"),
        ('DATE=1 HOST="a"b="c"', "missing blank between fields"),
        ('DATE=1 HOST="a" b="c', "unterminated quoted value"),
        ("just some words", "expected KEY=value"),
        ("=value", "expected KEY=value"),
    ],
)
def test_malformed_lines_name_the_problem_and_line(line: str, fragment: str) -> None:
    with pytest.raises(ULMError) as caught:
        parse_line(line, 17)
    assert caught.value.line == 17
    assert fragment in caught.value.message
    assert str(caught.value).startswith("line 17:")


def test_missing_required_fields_are_reported() -> None:
    with pytest.raises(ULMError, match=r"missing required field\(s\): .*DG.JOBID") as caught:
        event_from_fields(parse_line('DATE=20080928054721.553524 HOST="h" DG.EVNT="Done"'), 3)
    assert caught.value.line == 3


def test_missing_event_field_is_reported() -> None:
    with pytest.raises(ULMError, match="DG.DONE.STATUS_CODE"):
        event_from_fields(parse_line(HEADER), 4)


printable = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(printable)
def test_escape_round_trips(value: str) -> None:
    assert unescape(escape(value)) == value
    line = format_line([("DG.X", value, True), ("LVL", "SYSTEM", False)])
    assert parse_line(line) == {"DG.X": value, "LVL": "SYSTEM"}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.from_regex(r"[A-Z][A-Z0-9_.]{0,8}", fullmatch=True), printable)))
def test_fast_path_agrees_with_general_parser(pairs: list[tuple[str, str]]) -> None:
    line = format_line((key, value, True) for key, value in pairs)
    if not pairs:
        return
    assert parse_line(line) == _parse_general(line, None)


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(1990, 1, 1),  # noqa: DTZ001  (naive bounds, made UTC below)
        max_value=datetime(2099, 12, 31),  # noqa: DTZ001
    )
)
def test_ulm_dates_parse_to_epoch_microseconds(moment: datetime) -> None:
    text = moment.strftime("%Y%m%d%H%M%S.%f")
    expected = calendar.timegm(moment.timetuple()) * 1_000_000 + moment.microsecond
    assert parse_ulm_date(text) == expected
    assert parse_ulm_date(text) == expected  # the second time from the minute cache


@pytest.mark.parametrize("text", ["2008092805472", "20080928054721.55x", "2008-09-28T05:47:21"])
def test_bad_ulm_dates_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="not a ULM date"):
        parse_ulm_date(text)
