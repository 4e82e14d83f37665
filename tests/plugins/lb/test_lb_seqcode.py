"""gLite sequence codes: parsing with and without LBS, ordering, ties by timestamp, wn_seq."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jp_primary.plugins.lb.fields import parsable_seqcode
from jp_primary.plugins.lb.seqcode import (
    LBS,
    LM,
    WM,
    SeqCodeError,
    format_seqcode,
    parse_seqcode,
    with_component,
)
from jp_primary.plugins.lb.statemachine import event_order_key

from .conftest import HEADER

FULL = (
    "UI=000000:NS=0000000004:WM=000005:BH=0000000000:JSS=000003:LM=000007:LRMS=000000:"
    "APP=000000:LBS=000002"
)
OLD = "UI=000002:NS=0000000004:WM=000010:BH=0000000000:JSS=000004:LM=000009:LRMS=000000:APP=000000"


def test_parse_full_and_old_codes() -> None:
    assert parse_seqcode(FULL) == (0, 4, 5, 0, 3, 7, 0, 0, 2)
    assert parse_seqcode(OLD) == (2, 4, 10, 0, 4, 9, 0, 0, 0)
    assert parse_seqcode(OLD)[LBS] == 0


def test_format_round_trips() -> None:
    assert format_seqcode(parse_seqcode(FULL)) == FULL
    assert format_seqcode(parse_seqcode(OLD), with_lbs=False) == OLD


@pytest.mark.parametrize(
    "text",
    ["", "UI=1", "TIMESTAMP=20080101000000:POS=0000000001:EV.CODE=001:SRC=C", "UI=x:" + OLD[5:]],
)
def test_non_glite_codes_are_rejected(text: str) -> None:
    with pytest.raises(SeqCodeError):
        parse_seqcode(text)
    assert parsable_seqcode(text) is None


def test_ordering_is_lexicographic_from_ui_to_lbs() -> None:
    codes = [parse_seqcode(FULL), parse_seqcode(OLD), with_component(parse_seqcode(FULL), LM, 0)]
    assert sorted(codes) == [codes[2], codes[0], codes[1]]
    # A higher WM counter wins over any LM/LRMS counter (the branch is decided by WM).
    assert with_component(parse_seqcode(FULL), WM, 6) > with_component(parse_seqcode(FULL), LM, 99)


def test_ties_are_broken_by_timestamp() -> None:
    from jp_primary.plugins.lb.events import event_from_fields
    from jp_primary.plugins.lb.ulm import parse_line

    late = event_from_fields(parse_line(HEADER + ' DG.DONE.STATUS_CODE="OK"'), 1)
    early_line = HEADER.replace("20080928054721.553524", "20080928054720.000001")
    early = event_from_fields(parse_line(early_line + ' DG.DONE.STATUS_CODE="OK"'), 2)
    assert late.seq == early.seq
    assert sorted([late, early], key=event_order_key) == [early, late]


def test_wn_seq_is_parsed_like_a_seqcode() -> None:
    assert parsable_seqcode(FULL) == parse_seqcode(FULL)
    assert parsable_seqcode(None) is None
    assert parsable_seqcode("(nil)") is None


counters = st.tuples(*[st.integers(0, 999_999)] * 9)


@given(counters, counters)
def test_tuple_order_matches_component_order(a: tuple[int, ...], b: tuple[int, ...]) -> None:
    first_difference = next((i for i in range(9) if a[i] != b[i]), None)
    if first_difference is None:
        assert parse_seqcode(format_seqcode(a)) == parse_seqcode(format_seqcode(b))
    else:
        expected = a[first_difference] < b[first_difference]
        assert (parse_seqcode(format_seqcode(a)) < parse_seqcode(format_seqcode(b))) == expected
