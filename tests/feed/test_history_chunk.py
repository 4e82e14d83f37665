"""PostgreSQL encodes a history chunk's records in its query; they must be the records the
Python encoder makes (SQLite's path, and the continuous phase's), value for value."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from jp_primary.attributes.registry import default_registry
from jp_primary.db.repositories import values
from jp_primary.feed.cutter import chunk_encoded_here, chunk_encoded_in_sql
from jp_primary.feed.spec import qualified_attributes, selection_of
from tests.feed.test_purge import engine_of
from tests.helpers import ALICE, Api, new_jobid, post_job, registered_key

TAG = "http://egee.cesnet.cz/en/WSDL/jp-lbtag"
AWKWARD = ['say "hi"', "back\\slash", "new\nline\ttab", "\x01\x1f\x7f", "žluťoučký 😀", "%_*"]


def _register(api: Api, count: int) -> list[int]:
    keys = [registered_key(post_job(api, new_jobid(), ALICE)) for _ in range(count)]
    query = text("SELECT id FROM jobs WHERE key = ANY(:keys) ORDER BY id")
    rows = engine_of(api).db.run_sync(lambda s: s.execute(query, {"keys": keys}).all())
    return [int(r[0]) for r in rows]


def _store(api: Api, job_id: int, pairs: list[tuple[str, str, str | None]]) -> None:
    at = datetime(1999, 12, 31, 23, 59, 59, 5, tzinfo=UTC)
    new = [values.NewValue(n, v, "USER", at, origin_detail=d) for n, v, d in pairs]
    engine_of(api).db.run_sync(lambda s: values.append(s, job_id, new))


def _decoded(chunk: list[Any]) -> list[tuple[int, bool, Any, list[tuple[str, str, str]]]]:
    return [(j.job_id, j.present, orjson.loads(j.record), sorted(j.tested)) for j in chunk]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize(
    ("attributes", "conditions"),
    [
        (["tag:a", "tag:b", "system:owner", "system:regtime"], []),
        (["tag:*"], [{"attr": "tag:a", "op": "prefix", "value": "say"}]),
        (["tag:b"], [{"attr": "tag:zz", "op": "exists"}]),
        (["tag:%_*"], []),
    ],
)
def test_records_encoded_by_postgresql_equal_the_python_encoding(
    api: Api, attributes: list[str], conditions: list[dict[str, str]]
) -> None:
    first, second, third, late = _register(api, 4)
    _store(api, first, [(f"{TAG}:a", t, None) for t in AWKWARD])
    _store(api, second, [(f"{TAG}:B", "x", 'file 7 "lb"'), (f"{TAG}:%_x", "odd", None)])
    _store(api, third, [(f"{TAG}:a", "say", None), (f"{TAG}:zz", "1", "d")])
    snapshot = engine_of(api).db.run_sync(values.last_seq)
    _store(api, late, [(f"{TAG}:a", "after the snapshot", None)])
    selection = selection_of(qualified_attributes(attributes), conditions, default_registry())

    def both(snap: int) -> tuple[Any, Any]:
        db = engine_of(api).db
        in_sql = db.run_sync(lambda s: chunk_encoded_in_sql(s, selection, first - 1, 4, snap))
        here = db.run_sync(lambda s: chunk_encoded_here(s, selection, first - 1, 4, snap))
        return _decoded(in_sql), _decoded(here)

    in_sql, here = both(snapshot)
    assert in_sql == here
    assert [j[0] for j in in_sql] == [first, second, third, late]
    tags_of_first = [v["value"] for v in in_sql[0][2]["values"] if v["name"] == f"{TAG}:a"]
    if "tag:a" in attributes:
        assert tags_of_first == AWKWARD
    # Before any of them existed: no job has a value up to that snapshot.
    in_sql, here = both(snapshot - 10_000_000)
    assert in_sql == here
    assert not any(present for _, present, _, _ in in_sql)
