"""The pure parts of the feed: backoff, pull tokens, matching and record sizes."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jp_primary.attributes.registry import default_registry
from jp_primary.db.repositories.feed_values import FeedValue
from jp_primary.errors import BadRequest
from jp_primary.feed import tokens
from jp_primary.feed.backoff import retry_delay
from jp_primary.feed.matcher import JobRecord, job_matches, requested_values
from jp_primary.feed.spec import qualified_attributes, selection_of

AT = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
TAG = "http://egee.cesnet.cz/en/WSDL/jp-lbtag"


def value(name: str, text: str, seq: int, origin: str = "USER") -> FeedValue:
    return FeedValue(1, name, text, origin, None, AT, seq)


@given(st.integers(min_value=1, max_value=200))
def test_backoff_is_jittered_below_an_exponential_cap(attempts: int) -> None:
    rng = random.Random(attempts)
    delay = retry_delay(attempts, 1.0, 300.0, rng)
    assert 0.1 <= delay <= min(300.0, 2 ** (attempts - 1))


def test_backoff_grows() -> None:
    rng = random.Random(3)
    early = max(retry_delay(1, 1.0, 300.0, rng) for _ in range(200))
    late = max(retry_delay(9, 1.0, 300.0, rng) for _ in range(200))
    assert early <= 1.0 < late


@given(st.integers(min_value=0, max_value=10**12))
def test_tokens_round_trip_and_belong_to_their_feed(number: int) -> None:
    token = tokens.issue("a" * 32, number)
    assert tokens.parse("a" * 32, token) == number
    with pytest.raises(BadRequest):
        tokens.parse("b" * 32, token)


@pytest.mark.parametrize("bad", ["", "b", "b1", "b1.", "x1.0123456789abcdef", "b-1.00", "b1.zz"])
def test_malformed_tokens_are_refused(bad: str) -> None:
    with pytest.raises(BadRequest):
        tokens.parse("f" * 32, bad)


def test_matching_is_case_insensitive_by_name_and_any_value_counts() -> None:
    selection = selection_of(
        qualified_attributes(["tag:color"]),
        [{"attr": "tag:color", "op": "eq", "value": "red"}],
        default_registry(),
    )
    assert job_matches(
        selection, [value(f"{TAG}:Color", "blue", 1), value(f"{TAG}:COLOR", "red", 2)]
    )
    assert not job_matches(selection, [value(f"{TAG}:color", "blue", 1)])
    assert not job_matches(selection, [])


def test_typed_conditions_compare_by_type() -> None:
    selection = selection_of(
        ["x:n"], [{"attr": "system:regtime", "op": "gt", "value": "2026-01-01T00:00:00Z"}],
        default_registry(),
    )  # fmt: skip
    regtime = "http://egee.cesnet.cz/en/Schema/JP/System:regtime"
    assert job_matches(selection, [value(regtime, "2026-11-29T12:00:00.000000Z", 1, "SYSTEM")])
    assert not job_matches(selection, [value(regtime, "2025-11-29T12:00:00.000000Z", 1)])


def test_new_values_only_after_the_cursor_and_only_requested_ones() -> None:
    selection = selection_of(qualified_attributes(["tag:a"]), [], default_registry())
    values = [value(f"{TAG}:a", "1", 5), value(f"{TAG}:b", "2", 6), value(f"{TAG}:a", "3", 7)]
    assert [v["seq"] for v in requested_values(selection, values)] == [5, 7]
    assert [v["seq"] for v in requested_values(selection, values, after_seq=5)] == [7]


def test_record_bodies_carry_retracted_and_removed_only_when_set() -> None:
    plain = JobRecord("j", "o").body()
    assert plain == {"jobid": "j", "owner": "o", "values": []}
    full = JobRecord("j", "o", retracted=[3], removed=True).body()
    assert full["retracted"] == [3]
    assert full["removed"] is True
