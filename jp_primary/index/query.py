"""``POST /v1/query`` over the index: the primary's request, conditions and answer, across every
primary storage the index subscribes to.

Conditions are compiled and decided by the attribute library (``compile_conditions``,
``matches``), exactly as the primary decides them. SQL only narrows the candidates: each
condition on an *indexed* attribute becomes a range over the typed keys (a superset, since keys
may be truncated), the library then checks every candidate. A query with no indexed condition is
refused unless its ``limit`` is small, and even then examines a bounded number of jobs (the rest
is reachable with ``next``): never a full scan by accident (the original's "No indexed attribute
in query" rule, reference §2.1).
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
from jp_primary.attributes.types import BooleanType, EnumType
from jp_primary.errors import InvalidInput
from jp_primary.index.catalog import Catalog
from jp_primary.index.config import QuerySection
from jp_primary.index.tables import jobs, values

_SYSTEM_COLUMNS = {SYSTEM_OWNER: jobs.c.owner, SYSTEM_JOBID: jobs.c.jobid}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_CHUNK = 2000
ESTIMATE_CAP = 5000  # index entries counted per condition when choosing where to start
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
        base, position_of = _candidates(plan, _narrowest(conn, plan))
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


def _narrowest(conn: Connection, plan: Plan) -> CompiledCondition | None:
    """The condition on indexed values that names the fewest entries, counted up to
    ``ESTIMATE_CAP`` through the (name, key) index; None when the job's own columns (owner,
    jobid) or the owner isolation name fewer. A few bounded index probes per query.

    Equal counts -- in practice several conditions all past the cap -- are broken by
    ``_spread``: a condition on a value of few possible values (a state, a done code, a boolean)
    or a bare ``exists`` goes last, since past the cap it is most likely the broad one."""
    best: tuple[int, int, CompiledCondition] | None = None
    for c in plan.indexed:
        if c.attr in _SYSTEM_COLUMNS:
            continue
        entries = sa.select(sa.literal(1)).where(*_value_terms(c, values)).limit(ESTIMATE_CAP)
        found = conn.execute(sa.select(sa.func.count()).select_from(entries.subquery()))
        count = int(found.scalar_one())
        if best is None or (count, _spread(c)) < best[:2]:
            best = (count, _spread(c), c)
    if best is None:
        return None
    direct = [_job_count(conn, c) for c in plan.indexed if c.attr in _SYSTEM_COLUMNS]
    if plan.owner is not None:
        owned = sa.select(sa.literal(1)).where(jobs.c.owner == plan.owner).limit(ESTIMATE_CAP)
        direct.append(
            int(conn.execute(sa.select(sa.func.count()).select_from(owned.subquery())).scalar_one())
        )
    return None if direct and min(direct) <= best[0] else best[2]


def _spread(c: CompiledCondition) -> int:
    """How broad ``c`` is likely to be when counting cannot tell (both past the cap): 0 for a
    condition on a type of many values (a time window, a number, a string), 1 for one on a type
    of few values (states, done codes, booleans: a handful of keys share every job), 2 for a
    bare ``exists`` (every job with the attribute). A guess from the type alone, no query."""
    if c.op == "exists" or (c.op == "prefix" and not c.value):
        return 2
    if isinstance(c.type, EnumType | BooleanType):
        return 1
    return 0


def _job_count(conn: Connection, c: CompiledCondition) -> int:
    if c.op in ("eq", "in", "prefix") and c.origin in (None, "SYSTEM"):
        rows = sa.select(sa.literal(1)).where(_probe(c)).limit(ESTIMATE_CAP)
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(rows.subquery())).scalar_one()
        )
    return ESTIMATE_CAP + 1  # exists/ne on owner or jobid: every job


def _candidates(plan: Plan, driver: CompiledCondition | None) -> tuple[Any, Any]:
    """The candidate jobs in id order, and the column their position is read from.

    The walk starts from ``driver`` (``_narrowest``): an ``eq`` walks its index entries, already
    in job order; another operator gathers the job ids it matches (few, or it would not have
    been chosen). Without one it walks the jobs of the owner or jobid conditions. Every other
    condition is probed per candidate (EXISTS on the job's values). A job may come twice from a
    multi-valued attribute's equal values: ``run`` skips repeats."""
    columns = (jobs.c.id, jobs.c.jobid, jobs.c.key, jobs.c.owner, jobs.c.source)
    base, position = sa.select(*columns), jobs.c.id
    if driver is not None and driver.op == "eq":
        joined = values.join(jobs, jobs.c.id == values.c.job_id)
        base = sa.select(*columns).select_from(joined).where(*_value_terms(driver, values))
        position = values.c.job_id
    elif driver is not None:
        base = base.where(jobs.c.id.in_(_matching(driver)))
    if plan.owner is not None:
        base = base.where(jobs.c.owner == plan.owner)
    for c in plan.indexed:
        if c is not driver:
            base = base.where(_probe(c))
    return base.order_by(position), position


def _needed(plan: Plan) -> set[str]:
    return {c.attr for c in plan.compiled if c.attr not in _SYSTEM_COLUMNS} | set(plan.select)


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


def _successor(prefix: str) -> str | None:
    """The least string greater than every string that starts with ``prefix``."""
    for i in range(len(prefix) - 1, -1, -1):
        code = ord(prefix[i]) + 1
        if code == 0xD800:
            code = 0xE000  # surrogates are not storable text
        if code <= 0x10FFFF:
            return prefix[:i] + chr(code)
    return None


def _range(column: Any, c: CompiledCondition) -> Any:
    """A superset of the keys (or texts) satisfying ``c``: keys may be cut, texts are exact."""
    loose = c.exact_text  # a cut key sorts at or before its full text: include the bounds
    if c.op == "eq":
        return column == c.key
    if c.op == "in":
        return column.in_(c.keys)
    if c.op == "lt":
        return column <= c.key if loose else column < c.key
    if c.op == "gt":
        return column >= c.key if loose else column > c.key
    if c.op == "within":
        return sa.and_(column >= c.key, column <= c.key2)  # BETWEEN mis-renders COLLATE "C"
    if c.op == "prefix" and c.value:
        start = c.value[:256]
        upper = _successor(start)
        return sa.and_(column >= start, column < upper) if upper else column >= start
    return sa.true()  # exists, or an empty prefix


def _probe(c: CompiledCondition) -> Any:
    """``c`` as a per-job test: on the job's own columns, or EXISTS among its values."""
    column = _SYSTEM_COLUMNS.get(c.attr)
    if column is not None:  # owner and jobid are columns of the job itself, whole texts
        if c.origin not in (None, "SYSTEM"):
            return sa.false()
        if c.op == "eq":
            return column == c.value
        if c.op == "in":
            return column.in_(c.values)
        return _range(column, c) if c.op == "prefix" else sa.true()
    # Its own alias: the walk may itself come from index_values (an eq's entries).
    probe = values.alias("probe")
    return sa.exists().where(probe.c.job_id == jobs.c.id, *_value_terms(c, probe))


def _matching(c: CompiledCondition) -> Any:
    """The ids of the jobs with a value that may satisfy ``c`` (from the (name, key) index)."""
    return sa.select(values.c.job_id).where(*_value_terms(c, values))


def _value_terms(c: CompiledCondition, table: Any) -> list[Any]:
    terms = [table.c.name == c.attr, _range(table.c.key, c)]
    if c.origin is not None:
        terms.append(table.c.origin == c.origin)
    return terms
