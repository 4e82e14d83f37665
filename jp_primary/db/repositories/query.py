"""Batch queries: compiled conditions (jp_primary/attributes/conditions.py) as SQL.

Each condition becomes ``jobs.id IN (SELECT job_id FROM attribute_values WHERE name = :attr AND
<predicate on index_key>)`` — "any value satisfies" is exactly a semi-join — and the page is the
first ``limit`` jobs after the cursor (keyset pagination, no OFFSET). The predicates are ranges
of the ``(name, index_key, job_id)`` index, so a selective condition costs what it matches, not
what the table holds.

Page order (``range_driver``): job id, except for a query over all jobs with a range condition
(``lt``, ``gt``, ``within``, ``prefix``): then the first such condition's index range is walked in
its own order and the page is ``(smallest matching key of that attribute, job id)`` — the only
order in which a range (a day of registrations) yields its first jobs without finding and
sorting all of them.

The semantics are those of ``CompiledCondition.holds`` (the reference the tests compare against):

* ordered types compare keys (order-preserving by construction);
* strings and XML compare keys too, which are exact for operands shorter than ``KEY_CHARS``; a
  longer operand also compares the text itself (code-point order: ``COLLATE "C"`` on PostgreSQL);
* a value whose text does not parse as its type has a NULL key: it satisfies ``exists`` and
  ``ne`` only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    FromClause,
    Select,
    String,
    and_,
    bindparam,
    func,
    null,
    or_,
    select,
    text,
    true,
    tuple_,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import aliased
from sqlmodel import Session

from jp_primary.attributes.conditions import CompiledCondition
from jp_primary.attributes.names import SYSTEM_JOBID, SYSTEM_OWNER, SYSTEM_REGTIME
from jp_primary.attributes.types import KEY_CHARS
from jp_primary.db.models import AttributeValueRow, IdentityRow, JobRow
from jp_primary.db.repositories.values import StoredValue

_VALUES = AttributeValueRow.__table__  # type: ignore[attr-defined]
_JOBS = JobRow.__table__  # type: ignore[attr-defined]
_IDENTITIES = IdentityRow.__table__  # type: ignore[attr-defined]
_OWNER = aliased(_IDENTITIES)


@dataclass(frozen=True)
class FoundJob:
    id: int
    key: str
    jobid: str
    owner: str
    position: str | None = None  # the driving range's key of the job (None: job id order)


class QueryCancelled(Exception):
    """The database cancelled the query (its statement timeout)."""


def find_jobs(
    session: Session,
    conditions: Sequence[CompiledCondition],
    *,
    after: int,
    limit: int,
    owner: str | None = None,
    timeout_ms: int | None = None,
    after_position: str | None = None,
) -> list[FoundJob]:
    """The first ``limit`` jobs after the cursor that satisfy every condition, only ``owner``'s
    when given, in the order ``range_driver`` names: job id > ``after``, or with a range driver
    ``(position, job id) > (after_position, after)`` (no ``after_position``: the first page).
    ``timeout_ms`` bounds the statement on PostgreSQL (``QueryCancelled`` when it runs out)."""
    if after and after_position is None and range_driver(conditions, owner) is not None:
        raise ValueError("a page in a range's order starts after a position and a job id")
    dialect = session.get_bind().dialect.name
    owner_id = None
    if owner is not None:
        owner_id = _identity_id(session, owner)
        if owner_id is None:
            return []  # never owned anything
    stmt = _page(conditions, _Cursor(after, after_position), limit, owner_id, dialect)
    with _statement_timeout(session, dialect, timeout_ms):
        rows = session.execute(stmt).all()
    return [FoundJob(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows]


def range_driver(
    conditions: Sequence[CompiledCondition], owner: str | None
) -> CompiledCondition | None:
    """The range condition whose ``(smallest matching key, job id)`` orders the pages, or None
    for job id order.

    Over all jobs, the first range condition (``lt``, ``gt``, ``within``, ``prefix``) in the
    query: its index range is walked in key order and the others are probed per job, so a page
    costs what it takes to find ``limit`` matches in the range, not the whole range's sort (a day
    of registrations grows with the table; job id order would have to sort all of it). An
    owner's own query keeps job id order: ``jobs (owner_id, id)`` walks their jobs in that order
    and stops after the page, which the range order could not (an owner is 1 % of a range)."""
    if owner is not None:
        return None
    return next((c for c in conditions if c.op in _RANGES), None)


def explain(
    session: Session, conditions: Sequence[CompiledCondition], owner: str | None = None
) -> str:
    """PostgreSQL's plan of the first page of ``find_jobs`` (tests assert index use)."""
    bind = session.get_bind()
    owner_id = None if owner is None else (_identity_id(session, owner) or -1)
    stmt = _page(conditions, _Cursor(0, None), 100, owner_id, bind.dialect.name)
    compiled = stmt.compile(bind, compile_kwargs={"literal_binds": True})
    return "\n".join(str(r[0]) for r in session.execute(text(f"EXPLAIN {compiled}")))


def _identity_id(session: Session, subject: str) -> int | None:
    found = session.execute(select(_IDENTITIES.c.id).where(_IDENTITIES.c.subject == subject))
    return found.scalar()


@dataclass(frozen=True)
class _Cursor:
    job_id: int
    position: str | None  # the driving range's key of that job (range order only)


def _page(
    conditions: Sequence[CompiledCondition],
    after: _Cursor,
    limit: int,
    owner_id: int | None,
    dialect: str,
) -> Select[tuple[int, str, str, str, str | None]]:
    jobs = select(_JOBS.c.id, _JOBS.c.key, _JOBS.c.jobid, _OWNER.c.subject)
    ranged = range_driver(conditions, None if owner_id is None else "owner")
    if ranged is not None:
        walked = _range_page(ranged, conditions, after, limit, dialect).subquery("walked")
        return (
            jobs.add_columns(walked.c.index_key)
            .join(walked, walked.c.job_id == _JOBS.c.id)
            .join(_OWNER, _OWNER.c.id == _JOBS.c.owner_id)
            .order_by(walked.c.index_key, walked.c.job_id)
        )
    stmt = jobs.add_columns(null().label("position")).join(_OWNER, _OWNER.c.id == _JOBS.c.owner_id)
    driver = _driver(conditions, owner_id)
    if driver is not None:
        page = _driven_page(driver, conditions, after.job_id, limit, dialect)
        return stmt.where(_JOBS.c.id.in_(page)).order_by(_JOBS.c.id)
    stmt = stmt.where(_JOBS.c.id > after.job_id)
    if owner_id is not None:
        # The owner's id, not their subject: a constant lets the planner walk (owner_id, id).
        stmt = stmt.where(_JOBS.c.owner_id == owner_id)
    for condition in conditions:
        matching = select(_VALUES.c.job_id).where(_condition_sql(condition, dialect))
        stmt = stmt.where(_JOBS.c.id.in_(matching))
    return stmt.order_by(_JOBS.c.id).limit(limit)


def _driver(
    conditions: Sequence[CompiledCondition], owner_id: int | None
) -> CompiledCondition | None:
    """The condition whose index range yields the page in job order, when the plan is clear.

    An ``eq`` on one key reads ``(name, index_key, job_id)`` in job id order: walking it and
    checking the other conditions on each job stops after ``limit`` jobs, whatever the number of
    jobs. That is the plan for a query over all jobs whose conditions are equalities (and
    ``ne``/``exists``/``in``). With a range condition (``within`` a day, ``prefix``, ``lt``/``gt``)
    or an owner's own jobs, which side is smaller depends on the data: the planner decides, on
    the statistics."""
    if owner_id is not None or any(c.op in _RANGES for c in conditions):
        return None
    exact = [c for c in conditions if c.op == "eq"]
    # A string operand longer than the key also compares the text: not a clean index walk.
    return next((c for c in exact if len(c.value or "") < KEY_CHARS), None)


_RANGES = frozenset({"lt", "gt", "within", "prefix"})


def _driven_page(
    driver: CompiledCondition,
    conditions: Sequence[CompiledCondition],
    after: int,
    limit: int,
    dialect: str,
) -> Select[tuple[int]]:
    """The page's job ids: the driver's index walked in job order, the others checked per job
    (DISTINCT: a job with the driver's value twice counts once)."""
    walked = _VALUES.alias("walked")
    stmt = (
        select(walked.c.job_id)
        .distinct()
        .where(
            walked.c.name == driver.attr,
            walked.c.index_key == _p(driver.key or ""),
            walked.c.job_id > after,
        )
    )
    if driver.origin is not None:
        stmt = stmt.where(walked.c.origin == driver.origin)
    stmt = stmt.where(*_probes(conditions, driver, walked.c.job_id, dialect))
    return stmt.order_by(walked.c.job_id).limit(limit)


# Written once per job, at its registration, and by nothing else (services/jobs.py; tags and
# plugins' values live in their own namespaces): a range over one of these meets each job once,
# so it needs no "smallest matching key" probe -- one random read per job of a large index.
_ONE_PER_JOB = frozenset({SYSTEM_OWNER, SYSTEM_REGTIME, SYSTEM_JOBID})


def _range_page(
    driver: CompiledCondition,
    conditions: Sequence[CompiledCondition],
    after: _Cursor,
    limit: int,
    dialect: str,
) -> Select[tuple[str, int]]:
    """The page's ``(key, job id)``: the driver's index range walked in key order, each job at
    its smallest matching key only (a job with several values in the range comes once, and
    DISTINCT folds the same key twice), the other conditions probed per job through
    ``(job_id, name, index_key)``."""
    walked = _VALUES.alias("driving")
    stmt = (
        select(walked.c.index_key, walked.c.job_id)
        .distinct()
        .where(_condition_sql(driver, dialect, walked))
    )
    if after.position is not None:
        position = tuple_(walked.c.index_key, walked.c.job_id)
        stmt = stmt.where(position > tuple_(_p(after.position), after.job_id))
    # The job's smallest matching key, as an aggregate: never flattened into a join, it stays a
    # per-job probe of (job_id, name, index_key) reading one index entry. "<=" says "=" here (a
    # matching key is never below the smallest) but is estimated as a third of the rows, not
    # as a rare equality: with "=" the planner expects few jobs to pass, concludes the walk
    # would not stop early and sorts the whole range instead.
    if driver.attr not in _ONE_PER_JOB:
        smaller = _VALUES.alias("smaller")
        smallest = select(func.min(smaller.c.index_key)).where(
            smaller.c.job_id == walked.c.job_id, _condition_sql(driver, dialect, smaller)
        )
        stmt = stmt.where(walked.c.index_key <= smallest.scalar_subquery())
    stmt = stmt.where(*_probes(conditions, driver, walked.c.job_id, dialect))
    return stmt.order_by(walked.c.index_key, walked.c.job_id).limit(limit)


def _probes(
    conditions: Sequence[CompiledCondition],
    driver: CompiledCondition,
    job_id: ColumnElement[int],
    dialect: str,
) -> list[ColumnElement[bool]]:
    """Every condition but the driver, checked on the walked job through (job_id, name, key)."""
    return [
        select(_VALUES.c.job_id)
        .where(_VALUES.c.job_id == job_id, _condition_sql(condition, dialect))
        .exists()
        for condition in conditions
        if condition is not driver
    ]


def _condition_sql(
    c: CompiledCondition, dialect: str, values: FromClause = _VALUES
) -> ColumnElement[bool]:
    clauses: list[ColumnElement[bool]] = [values.c.name == c.attr]
    if c.origin is not None:
        clauses.append(values.c.origin == c.origin)
    clauses.append(_predicate(c, dialect, values))
    return and_(*clauses)


def _predicate(c: CompiledCondition, dialect: str, values: FromClause) -> ColumnElement[bool]:
    key, text_col = values.c.index_key, values.c.value
    exact_col = text_col.collate("C") if dialect == "postgresql" else text_col
    op = c.op
    if op == "exists":
        return true()
    if op == "in":
        if c.exact_text and any(len(v) >= KEY_CHARS for v in c.values):
            return text_col.in_([_p(v) for v in c.values])
        return key.in_([_p(k) for k in c.keys])
    if op == "prefix":
        return _prefix(c.value or "", key, text_col)
    long = c.exact_text and any(len(v or "") >= KEY_CHARS for v in (c.value, c.value2))
    value, low = _p(c.value or ""), _p(c.key or "")
    if op == "eq":
        return and_(key == low, text_col == value) if long else key == low
    if op == "ne":
        if c.exact_text:
            return text_col != value
        return or_(key.is_(None), key != low)
    if op == "lt":
        return and_(key <= low, exact_col < value) if long else key < low
    if op == "gt":
        return and_(key >= low, exact_col > value) if long else key > low
    bounded = and_(key >= low, key <= _p(c.key2 or ""))  # within
    if long:
        return and_(bounded, exact_col >= value, exact_col <= _p(c.value2 or ""))
    return bounded


def _p(value: str) -> BindParameter[str]:
    """A plain text parameter: it takes the key column's "C" collation on PostgreSQL (a column's
    collation wins over a parameter's default one), and renders without a COLLATE clause."""
    return bindparam(None, value, type_=String())


def _prefix(
    value: str, key: ColumnElement[str], text_col: ColumnElement[str]
) -> ColumnElement[bool]:
    """Strings starting with ``value``: a key range (the index), and the text beyond the key."""
    if len(value) >= KEY_CHARS:
        head = _p(value[:KEY_CHARS])
        return and_(key == head, func.substr(text_col, 1, len(value)) == _p(value))
    if not value:
        return key.is_not(None)
    upper = _successor(value)
    if upper is None:
        return key >= _p(value)
    return and_(key >= _p(value), key < _p(upper))


def _successor(prefix: str) -> str | None:
    """The least string greater than every string starting with ``prefix`` (None: no bound)."""
    while prefix:
        last = ord(prefix[-1])
        following = last + 1 if last + 1 != 0xD800 else 0xE000  # no surrogates in stored text
        if following <= 0x10FFFF:
            return prefix[:-1] + chr(following)
        prefix = prefix[:-1]
    return None


@contextmanager
def _statement_timeout(session: Session, dialect: str, timeout_ms: int | None) -> Iterator[None]:
    """``SET LOCAL statement_timeout`` on PostgreSQL for the rest of the transaction (a query's
    own: the service runs each in one); the database's cancellation becomes ``QueryCancelled``."""
    if dialect != "postgresql" or not timeout_ms:
        yield
        return
    session.execute(text(f"SET LOCAL statement_timeout = {int(timeout_ms)}"))
    try:
        yield
    except DBAPIError as exc:
        if _is_cancel(exc):
            raise QueryCancelled(str(exc.orig)) from None
        raise


def _is_cancel(exc: BaseException) -> bool:
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return code == "57014"  # query_canceled


def values_of(
    session: Session, job_ids: Sequence[int], names: Sequence[str] | None
) -> dict[int, list[StoredValue]]:
    """The values of the given jobs in seq order per job: all, or those of ``names`` (matched
    case-insensitively, as single-job retrieval matches them)."""
    if not job_ids or (names is not None and not names):
        return {}
    author = aliased(_IDENTITIES)
    stmt = (
        select(
            _VALUES.c.job_id,
            _VALUES.c.name,
            _VALUES.c.value,
            _VALUES.c.origin,
            _VALUES.c.origin_detail,
            _VALUES.c.timestamp,
            _VALUES.c.seq,
            author.c.subject,
        )
        .outerjoin(author, author.c.id == _VALUES.c.author_id)
        .where(_VALUES.c.job_id.in_(list(job_ids)))
        .order_by(_VALUES.c.job_id, _VALUES.c.seq)
    )
    if names is not None:
        stmt = stmt.where(func.lower(_VALUES.c.name).in_(sorted({n.lower() for n in names})))
    found: dict[int, list[StoredValue]] = {}
    for row in session.execute(stmt):
        found.setdefault(int(row[0]), []).append(StoredValue(*row[1:]))
    return found
