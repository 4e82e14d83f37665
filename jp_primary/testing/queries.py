"""Hypothesis strategies and the brute-force oracle for batch-query tests.

``POOLS`` holds texts per attribute type — parseable in several spellings (time zones, leading
zeros, case), texts that do not parse, strings beyond the index key — and ``job_values`` /
``conditions`` draw jobs and conditions over a mapping type name -> attribute name. ``expected``
evaluates conditions over jobs with the attribute library's ``matches``: the reference the SQL
(and the API) must agree with. Needs ``hypothesis`` (a test dependency).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hypothesis import strategies as st

from jp_primary.attributes.conditions import OPERATORS, CompiledCondition, Condition, matches
from jp_primary.attributes.names import LB_ATTRIBUTES, LB_TAG
from jp_primary.testing.jobsets import SyntheticJob

LONG = "p" * 130  # longer than the index key (128 characters)
POOLS: dict[str, list[str]] = {
    "integer": ["0", "7", "007", "9", "10", "-3", "-10", "+10", "99999999999999999999", "x", ""],
    "float": ["0", "-0.0", "1.5", "1e3", "1000", "-2.25", ".5", "nan", "1_0"],
    "timestamp": [
        "2026-11-29T10:00:00Z",
        "2026-11-29T11:00:00+01:00",
        "2026-11-29T05:00:00-05:00",
        "2026-11-29T09:59:59.999999",
        "2026-11-30T00:30:00+01:00",
        "2026-11-28T23:00:00Z",
        "yesterday",
    ],
    "lb_state": ["Done", "DONE", "Cleared", "Submitted", "Running", "6", "Purged", "Finished"],
    "lb_done_code": ["OK", "FAILED", "CANCELLED", "0", "1", "2", "3"],
    "boolean": ["true", "1", "false", "no", "YES", "maybe"],
    "xml": ["<a/>", "<item>1</item>", "<a/><b/>", "<a>", "text"],
    "string": [
        "",
        "a",
        "ab",
        "B",
        "é",
        "中文",
        "😀",
        "a b",
        LONG,
        LONG + "a",
        LONG + "b",
        "p" * 129,
    ],
}
ORIGINS = ("SYSTEM", "USER", "FILE")

# Attributes the built-in plugins declare, one per type they use (no built-in float attribute).
BUILTIN_ATTRIBUTES: dict[str, str] = {
    "integer": f"{LB_ATTRIBUTES}:exitCode",
    "timestamp": f"{LB_ATTRIBUTES}:stateEnterTime",
    "lb_state": f"{LB_ATTRIBUTES}:status",
    "lb_done_code": f"{LB_ATTRIBUTES}:doneCode",
    "boolean": f"{LB_ATTRIBUTES}:cancelling",
    "xml": f"{LB_ATTRIBUTES}:stateEnterTimes",
    "string": f"{LB_TAG}:q9text",
}


def job_values(attrs: Mapping[str, str]) -> st.SearchStrategy[list[tuple[str, str, str]]]:
    """The (name, value, origin) values of one job: up to three attributes, 1-3 values each."""

    @st.composite
    def draw_values(draw: st.DrawFn) -> list[tuple[str, str, str]]:
        chosen = draw(st.lists(st.sampled_from(sorted(attrs)), max_size=3, unique=True))
        items = []
        for type_name in chosen:
            texts = draw(st.lists(st.sampled_from(POOLS[type_name]), min_size=1, max_size=3))
            items += [(attrs[type_name], t, draw(st.sampled_from(ORIGINS))) for t in texts]
        return items

    return draw_values()


def conditions(attrs: Mapping[str, str]) -> st.SearchStrategy[Condition]:
    """One condition over ``attrs`` with operands from the pools (some invalid on purpose)."""

    @st.composite
    def draw_condition(draw: st.DrawFn) -> Condition:
        type_name = draw(st.sampled_from(sorted(attrs)))
        attr, pool = attrs[type_name], POOLS[type_name]
        op = draw(st.sampled_from(OPERATORS))
        origin = draw(st.none() | st.sampled_from(ORIGINS))
        value = draw(st.sampled_from(pool))
        if op == "exists":
            return Condition(attr, op, origin=origin)
        if op == "in":
            values = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4))
            return Condition(attr, op, values=tuple(values), origin=origin)
        if op == "within":
            return Condition(attr, op, value, draw(st.sampled_from(pool)), origin=origin)
        return Condition(attr, op, value, origin=origin)

    return draw_condition()


def expected(jobs: Sequence[SyntheticJob], compiled: Sequence[CompiledCondition]) -> set[str]:
    """The keys of the jobs that satisfy every condition, by brute force over their values."""
    keys = set()
    for job in jobs:
        by_name: dict[str, list[tuple[str, str]]] = {}
        for name, value, origin in job.values:
            by_name.setdefault(name, []).append((value, origin))
        if matches(compiled, by_name):
            keys.add(job.key)
    return keys


RANGE_OPERATORS = frozenset({"lt", "gt", "within", "prefix"})


def page_order(
    jobs: Sequence[SyntheticJob], compiled: Sequence[CompiledCondition], *, over_all: bool = True
) -> list[str]:
    """The keys of the matching jobs in the order docs/queries.md promises: registration order
    (``jobs`` as given), except over all jobs with a range condition, where the first range
    condition orders them by the smallest index key of its matching values, then registration."""
    matching = expected(jobs, compiled)
    driver = next((c for c in compiled if c.op in RANGE_OPERATORS), None) if over_all else None
    ordered = [(n, job) for n, job in enumerate(jobs) if job.key in matching]
    if driver is None:
        return [job.key for _, job in ordered]

    def position(numbered: tuple[int, SyntheticJob]) -> tuple[str, int]:
        n, job = numbered
        keys = [
            driver.type.index_key(value)
            for name, value, origin in job.values
            if name == driver.attr and driver.holds([(value, origin)])
        ]
        return min(k for k in keys if k is not None), n

    return [job.key for _, job in sorted(ordered, key=position)]
