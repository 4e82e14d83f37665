"""The SQL of batch queries against the reference semantics of the attribute library.

Values are written through the repository layer (``jp_primary.testing.jobsets.store``: keyed by
the session's registry as the service keys them), then ``find_jobs`` must return exactly the
jobs ``matches`` accepts: every operator on every type, multi-valued attributes, origins, long
strings beyond the key, and a differential property test over random jobs and queries. Each
test scopes its queries to its own jobs with a unique tag (the database is shared).
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from jp_primary.attributes.conditions import (
    OPERATORS,
    CompiledCondition,
    Condition,
    ConditionError,
    compile_conditions,
)
from jp_primary.attributes.names import LB_TAG
from jp_primary.attributes.registry import TypeRegistry
from jp_primary.db.repositories import query as query_sql
from jp_primary.db.session import create_db_engine, new_session
from jp_primary.plugins.registry import PluginRegistry
from jp_primary.testing.jobsets import SyntheticJob, store
from jp_primary.testing.queries import POOLS, conditions, expected, job_values, page_order

NS = "http://q9.test/ns"
ATTRS = {
    "integer": f"{NS}:i",
    "float": f"{NS}:f",
    "timestamp": f"{NS}:t",
    "lb_state": f"{NS}:s",
    "lb_done_code": f"{NS}:d",
    "boolean": f"{NS}:b",
    "xml": f"{NS}:m",
    "string": f"{NS}:x",
}
SCOPE = f"{LB_TAG}:q9scope"


def types() -> TypeRegistry:
    registry = PluginRegistry().attribute_types().copy()
    for type_name, attr in ATTRS.items():
        registry.declare(attr, type_name, "q9 tests")
    return registry


TYPES = types()


@pytest.fixture(scope="module")
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url, pool_size=2)
    yield engine
    engine.dispose()


def _jobs(values: Sequence[Sequence[tuple[str, str, str]]], scope: str) -> list[SyntheticJob]:
    at = datetime(2026, 11, 29, tzinfo=UTC)
    made = []
    for items in values:
        key = secrets.token_urlsafe(16)[:22]
        scoped = ((SCOPE, scope, "USER"), *items)
        made.append(SyntheticJob(f"https://lb.example.org:9000/{key}", key, "/CN=q9", at, scoped))
    return made


def _scoped(jobs: list[SyntheticJob], compiled: list[CompiledCondition]) -> list[CompiledCondition]:
    scope = next(v for n, v, _ in jobs[0].values if n == SCOPE)
    return [*compile_conditions([Condition("tag:q9scope", "eq", scope)], TYPES), *compiled]


def _run(engine: Engine, jobs: list[SyntheticJob], compiled: list[CompiledCondition]) -> set[str]:
    with new_session(engine, TYPES) as session:
        found = query_sql.find_jobs(session, _scoped(jobs, compiled), after=0, limit=10_000)
    return {job.key for job in found}


def _pages(engine: Engine, compiled: list[CompiledCondition], limit: int) -> list[list[str]]:
    """Every page of the query, each after the previous one's last job (as the cursor does)."""
    pages: list[list[str]] = []
    after, position = 0, None
    with new_session(engine, TYPES) as session:
        while page := query_sql.find_jobs(
            session, compiled, after=after, after_position=position, limit=limit
        ):
            pages.append([job.key for job in page])
            after, position = page[-1].id, page[-1].position
    return pages


@pytest.fixture(scope="module")
def every_value(engine: Engine) -> list[SyntheticJob]:
    """One job per (type, text, origin), plus jobs with two values of one attribute."""
    scope = secrets.token_hex(8)
    singles = [
        [(ATTRS[t], text, origin)]
        for t, pool in POOLS.items()
        for text in pool
        for origin in ("USER", "FILE")
    ]
    pairs = [
        [(ATTRS[t], a, "FILE"), (ATTRS[t], b, "USER")]
        for t, pool in POOLS.items()
        for a, b in itertools.combinations(pool[:5], 2)
    ]
    jobs = _jobs([*singles, *pairs, []], scope)
    with new_session(engine, TYPES) as session:
        store(session, jobs)
        session.commit()
    return jobs


def _conditions_for(type_name: str) -> Iterator[Condition]:
    attr, pool = ATTRS[type_name], POOLS[type_name]
    for op in OPERATORS:
        for value in pool:
            if op == "exists":
                yield Condition(attr, op)
                yield Condition(attr, op, origin="USER")
            elif op == "in":
                yield Condition(attr, op, values=(value, pool[0]))
            elif op == "within":
                for upper in pool:
                    yield Condition(attr, op, value, upper)
            else:
                yield Condition(attr, op, value, origin="FILE" if value == pool[1] else None)


@pytest.mark.parametrize("type_name", list(ATTRS))
def test_every_operator_on_every_type_matches_the_reference(
    engine: Engine, every_value: list[SyntheticJob], type_name: str
) -> None:
    checked = 0
    for condition in _conditions_for(type_name):
        try:
            compiled = compile_conditions([condition], TYPES)
        except ConditionError:
            continue  # operands that do not fit the type: the API's 422 (tested there)
        wanted = expected(every_value, compiled)
        assert _run(engine, every_value, compiled) == wanted, condition
        checked += 1
    assert checked >= 20  # most operator/operand pairs of the pool are valid queries


def test_integers_are_numbers_and_timestamps_instants_in_sql(
    engine: Engine, every_value: list[SyntheticJob]
) -> None:
    def keys_of(attr: str, *texts: str) -> set[str]:
        return {
            j.key
            for j in every_value
            if len(j.values) == 2 and j.values[1][0] == attr and j.values[1][1] in texts
        }

    bigger = compile_conditions([Condition(ATTRS["integer"], "gt", "9")], TYPES)
    assert keys_of(ATTRS["integer"], "10", "+10", "99999999999999999999") <= _run(
        engine, every_value, bigger
    )
    assert not keys_of(ATTRS["integer"], "9", "007", "x") & _run(engine, every_value, bigger)
    same = compile_conditions([Condition(ATTRS["timestamp"], "eq", "2026-11-29T10:00:00Z")], TYPES)
    spellings = ("2026-11-29T10:00:00Z", "2026-11-29T11:00:00+01:00", "2026-11-29T05:00:00-05:00")
    single = keys_of(ATTRS["timestamp"], *spellings)
    assert len(single) == 6
    assert single <= _run(engine, every_value, same)


# -- differential: random jobs, random queries ----------------------------------------------


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    jobs=st.lists(job_values(ATTRS), min_size=1, max_size=8),
    where=st.lists(conditions(ATTRS), min_size=1, max_size=3),
)
def test_differential_random_jobs_and_queries(
    engine: Engine, jobs: list[list[tuple[str, str, str]]], where: list[Condition]
) -> None:
    try:
        compiled = compile_conditions(where, TYPES)
    except ConditionError:
        return  # a 422 at the API; the valid ones are the point here
    made = _jobs(jobs, secrets.token_hex(8))
    with new_session(engine, TYPES) as session:
        store(session, made)
        session.commit()
    assert _run(engine, made, compiled) == expected(made, compiled)
    # Pages of 3 in the documented order (a range condition's, or job id), each job once.
    scoped = _scoped(made, compiled)
    assert sum(_pages(engine, scoped, 3), []) == page_order(made, scoped)


def test_keyset_pages_cover_every_match_once(engine: Engine) -> None:
    made = _jobs([[(ATTRS["integer"], str(n), "FILE")] for n in range(25)], secrets.token_hex(8))
    with new_session(engine, TYPES) as session:
        store(session, made)
        session.commit()
    compiled = _scoped(made, compile_conditions([Condition(ATTRS["integer"], "gt", "4")], TYPES))
    pages = _pages(engine, compiled, 7)
    assert [len(page) for page in pages] == [7, 7, 6]
    assert sum(pages, []) == [job.key for job in made[5:]]


def test_pages_in_a_range_order_count_each_job_once_at_its_smallest_value(
    engine: Engine,
) -> None:
    """Over all jobs a range condition orders the pages: by the smallest matching value of the
    attribute (as a number here, not as text), then job id; a job with several values in the
    range comes once; equal values go by job id; values outside the range do not count."""
    attr = ATTRS["integer"]
    values = [["30"], ["9", "12"], ["100", "7"], ["12"], ["2", "50"], ["10", "10"], ["1"], ["8"]]
    made = _jobs([[(attr, v, "FILE") for v in job] for job in values], secrets.token_hex(8))
    with new_session(engine, TYPES) as session:
        store(session, made)
        session.commit()
    where = [Condition(attr, "within", "5", "60"), Condition(attr, "ne", "0")]
    compiled = _scoped(made, compile_conditions(where, TYPES))
    pages = _pages(engine, compiled, 2)
    by_position = [made[n].key for n in (2, 7, 1, 5, 3, 0, 4)]  # 7, 8, 9, 10, 12, 30, 50
    assert sum(pages, []) == by_position == page_order(made, compiled)
    assert [len(page) for page in pages] == [2, 2, 2, 1]
    assert made[6].key not in sum(pages, [])  # only 1: outside the range


def test_pages_walked_along_an_equality_count_each_job_once(engine: Engine) -> None:
    """Equalities only, over all jobs: the page walks the index of one equality in job order;
    a job holding that value twice is still one job, and pages stay full."""
    twice = [(ATTRS["string"], "same", "USER"), (ATTRS["string"], "same", "FILE")]
    made = _jobs([twice for _ in range(9)] + [[(ATTRS["string"], "other", "USER")]], "")
    scope = secrets.token_hex(8)
    made = _jobs([list(job.values[1:]) for job in made], scope)
    with new_session(engine, TYPES) as session:
        store(session, made)
        session.commit()
    compiled = compile_conditions(
        [
            Condition("tag:q9scope", "eq", scope),
            Condition(ATTRS["string"], "eq", "same"),
            Condition(ATTRS["string"], "ne", "nothing"),
        ],
        TYPES,
    )
    pages: list[list[int]] = []
    after = 0
    with new_session(engine, TYPES) as session:
        while page := query_sql.find_jobs(session, compiled, after=after, limit=4):
            pages.append([job.id for job in page])
            after = page[-1].id
    assert [len(p) for p in pages] == [4, 4, 1]
    flat = [job_id for p in pages for job_id in p]
    assert flat == sorted(set(flat))
