"""``POST /v1/query`` over the index: the primary's request, conditions and answer, across every
primary storage the index subscribes to.

Conditions are compiled and decided by the attribute library (``compile_conditions``,
``matches``), exactly as the primary decides them. SQL only narrows the candidates: each
condition on an *indexed* attribute becomes a range over the typed keys (a superset, since keys
may be truncated; ``planner.py`` chooses where the walk starts), the library then checks every
candidate. A query with no indexed condition is refused unless its ``limit`` is small, and even
then examines a bounded number of jobs (the rest is reachable with ``next``): never a full scan by
accident (the original's "No indexed attribute in query" rule, reference §2.1).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from jp_primary.attributes.conditions import CompiledCondition, Condition, ConditionError, matches
from jp_primary.attributes.names import SYSTEM_JOBID, SYSTEM_OWNER, expand
from jp_primary.errors import InvalidInput
from jp_primary.index.catalog import Catalog
from jp_primary.index.config import QuerySection
from jp_primary.index.planner import SYSTEM_COLUMNS, candidates, narrowest
from jp_primary.index.tables import values

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_CHUNK = 2000
_SELECTIVE = frozenset({"eq", "in", "lt", "gt", "within", "prefix", "exists"})


@dataclass(frozen=True)
class QueryRequest:
    where: Sequence[Condition]
    select: Sequence[str] = ()
    latest: bool = False
    limit: int = 100  # the primary's default
    after: str | None = None


@dataclass(frozen=True)
class FoundValue:
    name: str
    value: str
    origin: str
    origin_detail: str | None
    timestamp: datetime
    seq: int


@dataclass(frozen=True)
class FoundJob:
    jobid: str
    key: str
    owner: str
    primary_storage: str
    values: list[FoundValue] = field(default_factory=list)


@dataclass(frozen=True)
class QueryPage:
    jobs: list[FoundJob]
    next: str | None


@dataclass(frozen=True)
class Plan:
    compiled: list[CompiledCondition]
    indexed: list[CompiledCondition]
    select: list[str]
    latest: bool
    limit: int
    after: int
    owner: str | None  # None: every job (admins)


def _cursor(job_id: int) -> str:
    return f"j{job_id}"


def _after(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not (cursor.startswith("j") and cursor[1:].isdigit()):
        raise InvalidInput("after is not a cursor this index gave out; pass `next` unchanged")
    return int(cursor[1:])


class QueryEngine:
    def __init__(self, catalog: Catalog, limits: QuerySection) -> None:
        self.catalog = catalog
        self.limits = limits

    def plan(self, request: QueryRequest, owner: str | None) -> Plan:
        """Check the request; ``InvalidInput`` (422) says what to change."""
        try:
            compiled = self.catalog.types.compile(request.where)
        except ConditionError as exc:
            raise InvalidInput(f"where[{exc.index}]: {exc.message}") from None
        for c in compiled:
            section = self.catalog.lookup(c.attr)
            if section is None or not section.queryable:
                what = "is not kept by this index" if section is None else "is not queryable here"
                raise InvalidInput(f"where[{c.index}]: {c.attr} {what}; see GET /v1/feeds")
        select = [expand(n) for n in request.select]
        for name in select:
            if self.catalog.lookup(name) is None:
                raise InvalidInput(f"select: {name} is not kept by this index")
        limit = request.limit
        indexed = [c for c in compiled if c.op in _SELECTIVE and self.catalog.indexed(c.attr)]
        if not indexed and limit > self.limits.unindexed_limit:
            raise InvalidInput(
                "no condition on an indexed attribute: add one (eq, in, lt, gt, within, prefix "
                "or exists on an indexed attribute, or on the jobid) or ask for at most "
                f"limit={self.limits.unindexed_limit} jobs"
            )
        return Plan(compiled, indexed, select, request.latest, limit, _after(request.after), owner)

    def run(self, conn: Connection, plan: Plan) -> QueryPage:
        driver = narrowest(conn, plan.indexed, plan.owner)
        base, position_of = candidates(driver, plan.indexed, plan.owner)
        budget = None if plan.indexed else self.limits.unindexed_scan
        chunk = min(plan.limit + 1, MAX_CHUNK)  # an indexed eq mostly yields matches
        found: list[FoundJob] = []
        position = plan.after
        while True:
            rows = conn.execute(base.where(position_of > position).limit(chunk)).all()
            if budget is not None:
                rows = rows[:budget]
                budget -= len(rows)
            unique = [r for i, r in enumerate(rows) if i == 0 or rows[i - 1].id != r.id]
            by_job = _values(conn, [r.id for r in unique], _needed(plan))
            for row in unique:
                position = row.id
                if self._holds(plan, row, by_job[row.id]):
                    found.append(_job(row, by_job[row.id], plan))
                    if len(found) == plan.limit:
                        return QueryPage(found, _cursor(position))
            if len(rows) < chunk:
                return QueryPage(found, None)
            if budget == 0:  # examined as many as an unindexed query may: continue with next
                return QueryPage(found, _cursor(position))
            chunk = min(chunk * 2, MAX_CHUNK)

    def _holds(self, plan: Plan, row: Any, stored: list[Any]) -> bool:
        by_name: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for v in stored:
            by_name[v.name].append((v.value, v.origin))
        by_name[SYSTEM_OWNER].append((row.owner, "SYSTEM"))
        by_name[SYSTEM_JOBID].append((row.jobid, "SYSTEM"))
        return matches(plan.compiled, by_name)


def _needed(plan: Plan) -> set[str]:
    return {c.attr for c in plan.compiled if c.attr not in SYSTEM_COLUMNS} | set(plan.select)


def _values(conn: Connection, job_ids: list[int], names: set[str]) -> dict[int, list[Any]]:
    found: dict[int, list[Any]] = defaultdict(list)
    if not job_ids or not names:
        return found
    query = (
        sa.select(values)
        .where(values.c.job_id.in_(job_ids), values.c.name.in_(sorted(names)))
        .order_by(values.c.job_id, values.c.seq)
    )
    for row in conn.execute(query):
        found[row.job_id].append(row)
    return found


def _job(row: Any, stored: list[Any], plan: Plan) -> FoundJob:
    chosen = [v for v in stored if v.name in plan.select]
    if plan.latest:  # the newest value of each name, by timestamp then seq (as the primary)
        newest: dict[str, Any] = {}
        for v in chosen:
            if v.name not in newest or _when(v) >= _when(newest[v.name]):
                newest[v.name] = v
        chosen = [v for v in chosen if newest[v.name] is v]
    return FoundJob(
        jobid=row.jobid,
        key=row.key,
        owner=row.owner,
        primary_storage=row.source,
        values=[
            FoundValue(v.name, v.value, v.origin, v.origin_detail, _when(v)[0], v.seq)
            for v in chosen
        ],
    )


def _when(value: Any) -> tuple[datetime, int]:
    """A stored value's time (RFC 3339 text as the primary sent it) and seq, for ordering."""
    try:
        moment = datetime.fromisoformat(value.timestamp.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        moment = _EPOCH  # a primary that sent no time: oldest
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment, value.seq
