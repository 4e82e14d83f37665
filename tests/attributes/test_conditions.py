"""Conditions: any-value semantics, every operator on every type, and the errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jp_primary.attributes.conditions import (
    MAX_CONDITIONS,
    MAX_IN_VALUES,
    OPERATORS,
    CompiledCondition,
    Condition,
    ConditionError,
    compile_conditions,
    matches,
)
from jp_primary.attributes.names import LB_ATTRIBUTES, SYSTEM_REGTIME
from jp_primary.attributes.registry import default_registry
from jp_primary.plugins.condor.plugin import CondorLogPlugin
from jp_primary.plugins.lb.plugin import LBPlugin
from jp_primary.plugins.sandbox import SandboxPlugin

REGISTRY = default_registry([LBPlugin(), CondorLogPlugin(), SandboxPlugin()])


def one(attr: str, op: str, value: str | None = None, **more: object) -> CompiledCondition:
    return compile_conditions([Condition(attr, op, value, **more)], REGISTRY)[0]  # type: ignore[arg-type]


def values(*texts: str, origin: str = "FILE") -> list[tuple[str, str]]:
    return [(text, origin) for text in texts]


# (attr, op, operands, a value that satisfies, a value that does not) per type and operator.
CASES = [
    ("tag:campaign", "eq", {"value": "2026-11"}, "2026-11", "2026-11 "),
    ("tag:campaign", "ne", {"value": "a"}, "b", "a"),
    ("tag:campaign", "lt", {"value": "b"}, "a", "b"),
    ("tag:campaign", "gt", {"value": "B"}, "a", "A"),
    ("tag:campaign", "within", {"value": "b", "value2": "d"}, "d", "da"),
    ("tag:campaign", "in", {"values": ("x", "y")}, "y", "z"),
    ("tag:campaign", "prefix", {"value": "2026-"}, "2026-11", "2025-11"),
    ("tag:campaign", "exists", {}, "", None),
    ("lb:exitCode", "eq", {"value": "7"}, "007", "70"),
    ("lb:exitCode", "ne", {"value": "7"}, "8", "+7"),
    ("lb:exitCode", "lt", {"value": "10"}, "9", "10"),
    ("lb:exitCode", "gt", {"value": "9"}, "10", "9"),
    ("lb:exitCode", "within", {"value": "-5", "value2": "10"}, "10", "11"),
    ("lb:exitCode", "in", {"values": ("1", "2")}, "02", "3"),
    ("lb:exitCode", "exists", {}, "garbage", None),
    (
        "system:regtime",
        "eq",
        {"value": "2026-11-29T10:00:00Z"},
        "2026-11-29T11:00:00+01:00",
        "2026-11-29T11:00:00Z",
    ),
    (
        "system:regtime",
        "lt",
        {"value": "2026-11-29T10:00:00Z"},
        "2026-11-29T10:59:00+01:00",
        "2026-11-29T05:00:00-05:00",
    ),
    (
        "system:regtime",
        "gt",
        {"value": "2026-11-29T10:00:00+01:00"},
        "2026-11-29T09:00:01",
        "2026-11-29T09:00:00",
    ),
    (
        "system:regtime",
        "within",
        {"value": "2026-11-29", "value2": "2026-11-30T00:00:00+00:00"},
        "2026-11-29T23:59:59-00:00",
        "2026-11-30T00:30:00-01:00",
    ),
    (
        "system:regtime",
        "in",
        {"values": ("2026-11-29T10:00:00Z",)},
        "2026-11-29T10:00:00.000000",
        "2026-11-29T10:00:01Z",
    ),
    (
        "system:regtime",
        "ne",
        {"value": "2026-11-29T10:00:00Z"},
        "not a time",
        "2026-11-29T12:00:00+02:00",
    ),
    ("lb:status", "eq", {"value": "Done"}, "DONE", "Cleared"),
    ("lb:status", "gt", {"value": "Running"}, "Done", "Submitted"),
    ("lb:status", "lt", {"value": "Done"}, "Running", "Aborted"),
    ("lb:status", "within", {"value": "Ready", "value2": "Running"}, "Scheduled", "Done"),
    ("lb:status", "in", {"values": ("Done", "Aborted")}, "aborted", "Cleared"),
    ("lb:doneCode", "gt", {"value": "0"}, "FAILED", "OK"),
    ("lb:doneCode", "eq", {"value": "OK"}, "0", "CANCELLED"),
    ("lb:cancelling", "eq", {"value": "true"}, "1", "0"),
    ("lb:cancelling", "lt", {"value": "true"}, "false", "yes"),
    ("lb:cpuTime", "gt", {"value": "99"}, "100", "99"),
    ("lb:stateEnterTimes", "eq", {"value": "<item/>"}, "<item/>", "<item />"),
    ("lb:stateEnterTimes", "ne", {"value": "<item/>"}, "<x/>", "<item/>"),
    ("lb:stateEnterTimes", "in", {"values": ("<a/>", "<b/>")}, "<b/>", "<c/>"),
    ("condor:returnValue", "gt", {"value": "0"}, "1", "0"),
    ("isb:size:data.bin", "within", {"value": "100", "value2": "1000"}, "999", "1001"),
]


@pytest.mark.parametrize(("attr", "op", "operands", "good", "bad"), CASES)
def test_every_operator_on_every_type(
    attr: str, op: str, operands: dict[str, object], good: str, bad: str | None
) -> None:
    condition = one(attr, op, **operands)
    assert condition.holds(values(good))
    if bad is not None:
        assert not condition.holds(values(bad))
    assert not condition.holds([])


def test_every_operator_is_covered() -> None:
    assert {case[1] for case in CASES} == set(OPERATORS)


def test_any_value_semantics_on_multi_valued_attributes() -> None:
    done = one("lb:status", "eq", "Done")
    assert done.holds(values("Running", "Done"))
    differs = one("lb:status", "ne", "Done")
    assert differs.holds(values("Done", "Cleared"))  # some value differs
    assert not differs.holds(values("Done", "DONE"))
    assert one("lb:exitCode", "gt", "0").holds(values("0", "x", "3"))
    # Values that do not parse never satisfy an ordering comparison, equality or in.
    assert not one("lb:exitCode", "gt", "0").holds(values("x"))
    assert not one("lb:exitCode", "eq", "0").holds(values("zero"))


def test_origin_filter() -> None:
    tagged = one("tag:campaign", "eq", "x", origin="user")
    assert tagged.origin == "USER"
    assert tagged.holds([("x", "USER")])
    assert not tagged.holds([("x", "FILE")])
    assert not one("tag:campaign", "exists", origin="SYSTEM").holds([("x", "USER")])


def test_matches_is_the_and_of_conditions() -> None:
    compiled = compile_conditions(
        [
            Condition("lb:status", "eq", "Done"),
            Condition("system:regtime", "within", "2026-11-29T00:00:00Z", "2026-11-29T23:59:59Z"),
        ],
        REGISTRY,
    )
    job = {
        f"{LB_ATTRIBUTES}:status": values("Done"),
        SYSTEM_REGTIME: values("2026-11-29T12:00:00.000000Z", origin="SYSTEM"),
    }
    assert matches(compiled, job)
    assert not matches(compiled, {**job, SYSTEM_REGTIME: values("2026-11-28T12:00:00Z")})
    assert not matches(compiled, {SYSTEM_REGTIME: job[SYSTEM_REGTIME]})
    assert matches([], {})


def test_long_strings_compare_exactly_beyond_the_key() -> None:
    base = "a" * 200
    assert one("tag:t", "lt", base + "b").holds(values(base + "a"))
    assert not one("tag:t", "eq", base + "b").holds(values(base + "c"))
    assert one("tag:t", "prefix", base + "b").holds(values(base + "bc"))


BAD = [
    (Condition("lb:status", "like", "Done"), "unknown operator 'like'"),
    (Condition("lb:exitCode", "gt", "zero"), "value does not fit .*exitCode \\(type integer\\)"),
    (Condition("system:regtime", "eq", "yesterday"), "not a timestamp"),
    (Condition("lb:status", "eq", "Finished"), "not one of Undefined"),
    (Condition("system:regtime", "within", "2026-11-29"), "within needs value2"),
    (Condition("lb:exitCode", "within", "5", "1"), "within needs value <= value2"),
    (Condition("tag:x", "in", values=tuple(map(str, range(1001)))), "at most 1000 values"),
    (Condition("tag:x", "in"), "non-empty list of values"),
    (Condition("tag:x", "in", values=("a", "b")[:0]), "non-empty"),
    (Condition("tag:x", "in", "a"), "takes no value"),
    (Condition("lb:exitCode", "prefix", "1"), "prefix works on strings only"),
    (Condition("lb:stateEnterTimes", "prefix", "<"), "prefix works on strings only"),
    (Condition("lb:stateEnterTimes", "lt", "<a/>"), "needs an ordered type"),
    (Condition("lb:status", "eq"), "eq needs a value"),
    (Condition("lb:status", "exists", "Done"), "exists takes no value"),
    (Condition("lb:status", "eq", "Done", "x"), "value2 is only for within"),
    (Condition("lb:status", "eq", "Done", values=("x",)), "values is only for in"),
    (Condition("nosuch:status", "eq", "x"), "unknown alias 'nosuch'"),
    (Condition("campaign", "eq", "x"), "no namespace.*tag:campaign"),
    (Condition("", "exists"), "attr is empty"),
    (Condition("lb:status", "exists", origin="KERNEL"), "unknown origin 'KERNEL'"),
]


@pytest.mark.parametrize(("condition", "message"), BAD)
def test_bad_conditions_say_what_and_where(condition: Condition, message: str) -> None:
    good = Condition("lb:status", "exists")
    with pytest.raises(ConditionError, match=message) as caught:
        compile_conditions([good, good, condition], REGISTRY)
    assert caught.value.index == 2
    assert str(caught.value).startswith("condition 2: ")


def test_at_most_64_conditions() -> None:
    good = Condition("lb:status", "exists")
    assert len(compile_conditions([good] * MAX_CONDITIONS, REGISTRY)) == MAX_CONDITIONS
    with pytest.raises(ConditionError, match="at most 64 conditions") as caught:
        compile_conditions([good] * (MAX_CONDITIONS + 1), REGISTRY)
    assert caught.value.index == MAX_CONDITIONS
    assert MAX_IN_VALUES == 1000


def test_full_namespace_uris_and_urns_are_accepted() -> None:
    assert one(f"{LB_ATTRIBUTES}:status", "eq", "Done").attr == f"{LB_ATTRIBUTES}:status"
    assert one("urn:x:y", "exists").attr == "urn:x:y"


@given(
    st.integers(-(10**20), 10**20),
    st.integers(-(10**20), 10**20),
    st.sampled_from(["lt", "gt", "eq", "ne"]),
)
def test_integer_conditions_agree_with_python_numbers(a: int, b: int, op: str) -> None:
    expected = {"lt": a < b, "gt": a > b, "eq": a == b, "ne": a != b}[op]
    assert one("lb:exitCode", op, str(b)).holds(values(str(a))) is expected


# hypothesis takes naive bounds and attaches the zones itself.
instants = st.datetimes(
    min_value=datetime(1970, 1, 1),  # noqa: DTZ001
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)
zones = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@given(instants, instants, instants, zones, zones, zones)
def test_within_on_timestamps_agrees_with_instants_in_any_zone(
    at: datetime, low: datetime, high: datetime, z1: timezone, z2: timezone, z3: timezone
) -> None:
    low, high = min(low, high), max(low, high)
    condition = one(
        "system:regtime",
        "within",
        low.astimezone(z1).isoformat(),
        value2=high.astimezone(z2).isoformat(),
    )
    assert condition.holds(values(at.astimezone(z3).isoformat())) is (low <= at <= high)


@given(
    st.text(max_size=20), st.text(max_size=20), st.sampled_from(["lt", "gt", "eq", "ne", "prefix"])
)
def test_string_conditions_agree_with_python_strings(a: str, b: str, op: str) -> None:
    expected = {"lt": a < b, "gt": a > b, "eq": a == b, "ne": a != b, "prefix": a.startswith(b)}
    assert one("tag:t", op, b).holds(values(a)) is expected[op]
