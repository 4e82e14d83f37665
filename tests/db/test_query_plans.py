"""On PostgreSQL, selective batch queries use the indexes: no sequential scan of the values table
(issue 9, item 3). A database of its own, populated through the repository layer with 4,000
synthetic jobs x 12 values and analysed, so the planner decides on real statistics."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from jp_primary.attributes.conditions import Condition, compile_conditions
from jp_primary.attributes.registry import TypeRegistry
from jp_primary.db import migrate
from jp_primary.db.repositories import query as query_sql
from jp_primary.db.session import create_db_engine, new_session
from jp_primary.plugins.registry import PluginRegistry
from jp_primary.testing.jobsets import owner_name, store, synthetic_jobs
from tests.conftest import create_pg_database

TYPES: TypeRegistry = PluginRegistry().attribute_types()
JOBS = 4000


@pytest.fixture(scope="module")
def populated() -> Iterator[Engine]:
    url, drop = create_pg_database()
    try:
        migrate.upgrade(url)
        engine = create_db_engine(url, pool_size=2)
        jobs = list(synthetic_jobs(random.Random(9), JOBS, owners=50, days=20))
        with new_session(engine, TYPES) as session:
            for start in range(0, JOBS, 500):
                store(session, jobs[start : start + 500])
            session.commit()
        maintenance = create_engine(url, isolation_level="AUTOCOMMIT")
        with maintenance.connect() as conn:
            conn.execute(text("VACUUM ANALYZE"))
        maintenance.dispose()
        yield engine
        engine.dispose()
    finally:
        drop()


def plan(engine: Engine, where: list[Condition], owner: str | None = None) -> str:
    compiled = compile_conditions(where, TYPES)
    with new_session(engine, TYPES) as session:
        return query_sql.explain(session, compiled, owner)


QUERIES = {
    "owner": ([Condition("system:owner", "eq", owner_name(7))], None),
    "status and regtime within a day": (
        [
            Condition("lb:status", "eq", "Done"),
            Condition(
                "system:regtime", "within", "2026-01-05T00:00:00Z", "2026-01-05T23:59:59.999999Z"
            ),
        ],
        None,
    ),
    "tag": ([Condition("tag:run", "eq", "17")], None),
    "doneCode > 0": ([Condition("lb:doneCode", "gt", "0")], None),
    "doneCode > 0 of one owner": ([Condition("lb:doneCode", "gt", "0")], owner_name(3)),
    "jobid prefix": ([Condition("system:jobId", "prefix", "https://lb.example.org:9000/Ab")], None),
}


@pytest.mark.parametrize("name", list(QUERIES))
def test_selective_queries_use_the_indexes(populated: Engine, name: str) -> None:
    where, owner = QUERIES[name]
    shown = plan(populated, where, owner)
    assert "Seq Scan on attribute_values" not in shown, shown
    assert "ix_attribute_values_" in shown, shown


def test_the_values_table_is_big_enough_for_the_planner_to_choose(populated: Engine) -> None:
    # Without rows, a sequential scan is the right plan and the assertions above would be moot.
    everything = plan(populated, [Condition("lb:status", "exists")])
    assert "attribute_values" in everything
    with populated.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM attribute_values")).scalar_one()
    assert rows >= JOBS * 12 * 0.99


def test_the_key_column_compares_by_code_point(populated: Engine) -> None:
    with populated.connect() as conn:
        collation = conn.execute(
            text(
                "SELECT collation_name FROM information_schema.columns "
                "WHERE table_name = 'attribute_values' AND column_name = 'index_key'"
            )
        ).scalar_one()
    assert collation == "C"


def _ancestors(shown: str, marker: str) -> list[str]:
    """The plan nodes above the first line containing ``marker``, nearest first."""
    lines = shown.splitlines()
    at = next(n for n, line in enumerate(lines) if marker in line)
    depth = len(lines[at]) - len(lines[at].lstrip(" ->"))
    found = []
    for line in reversed(lines[:at]):
        indent = len(line) - len(line.lstrip(" ->"))
        if indent < depth and "  (cost=" in line:
            found.append(line.strip(" ->").split("  (")[0])
            depth = indent
    return found


@pytest.mark.parametrize(
    "name", ["status and regtime within a day", "jobid prefix", "doneCode > 0"]
)
def test_range_queries_walk_their_range_in_order_without_sorting_it(
    populated: Engine, name: str
) -> None:
    """Over all jobs a range condition's index is walked in the page's order and the walk stops
    after the page (a Limit above the index scan, no Sort between them): the first page costs
    what finding its jobs costs, not the whole range (a day's jobs grow with the table). Only
    the page's own rows may be sorted again after joining the jobs."""
    where, owner = QUERIES[name]
    shown = plan(populated, where, owner)
    walk = next(line for line in shown.splitlines() if "driving  (cost" in line)
    assert "Index Only Scan using ix_attribute_values_name_key_job" in walk, shown
    above = _ancestors(shown, "driving  (cost")
    assert "Limit" in above, shown
    assert not any("Sort" in node for node in above[: above.index("Limit")]), shown
