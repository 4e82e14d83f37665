"""Where an index query starts: the candidate jobs, in job order, as one SQL statement.

A query's candidates come from its *narrowest* start (the driver): the index entries of one
condition on indexed values, the jobs of a jobid or owner condition, or the owner's jobs (a
non-admin query sees its owner's jobs only). Every other condition is checked per candidate in
SQL (a superset, since keys may be cut) and then by the attribute library (``query.py``).

How narrow a start is, is counted, not guessed: each contender's rows are counted up to
``ESTIMATE_CAP`` through its index. When all of them pass it -- a tie the count cannot settle,
and where a wrong choice costs most: walking a big owner's jobs for a rare value, or a common
state's entries for one owner's jobs -- they are counted again, each time four times as far, until
one falls short or ``TIE_CAP`` is reached (so the cost stays a few times the narrowest one's size).
Only past that does the type decide (``_spread``): a state or a bare ``exists`` is most likely the
broad one. A few bounded index probes per query, whatever the data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from jp_primary.attributes.conditions import CompiledCondition
from jp_primary.attributes.names import SYSTEM_JOBID, SYSTEM_OWNER
from jp_primary.attributes.types import BooleanType, EnumType
from jp_primary.index.tables import jobs, values

SYSTEM_COLUMNS = frozenset({SYSTEM_OWNER, SYSTEM_JOBID})
ESTIMATE_CAP = 5000  # rows counted per contender when choosing where to start
TIE_CAP = 80_000  # how far a tie (every contender past ESTIMATE_CAP) is counted at most


@dataclass(frozen=True)
class Contender:
    """A possible start: ``driver`` None is the owner isolation (or, alone, every job)."""

    driver: CompiledCondition | None
    rows: Any  # a SELECT of one row per index entry (or job) this start would walk
    spread: int  # the tie-break of last resort: 0 many values, 1 few values, 2 everything


def narrowest(conn: Connection, indexed: list[CompiledCondition], owner: str | None) -> Any:
    """The driver for ``candidates``: a condition of ``indexed``, or None for the owner's jobs
    (``owner``) or, with no usable condition, every job."""
    contenders = [
        Contender(c, _rows(c), _spread(c))
        for c in indexed
        if c.attr not in SYSTEM_COLUMNS or _column_term(c, jobs) is not None
    ]
    if owner is not None:  # the owner's jobs: a string of many values, like an owner condition
        contenders.append(Contender(None, sa.select(jobs.c.id).where(jobs.c.owner == owner), 0))
    if len(contenders) < 2:  # nothing to choose between: no count
        return contenders[0].driver if contenders else None
    cap = ESTIMATE_CAP
    counts = [_count(conn, c.rows, cap) for c in contenders]
    while min(counts) == cap < TIE_CAP:  # every one past the cap: count further, 4 times as far
        cap = min(cap * 4, TIE_CAP)
        counts = [_count(conn, c.rows, cap) for c in contenders]
    best = min(range(len(contenders)), key=lambda i: (counts[i], contenders[i].spread, i))
    return contenders[best].driver


def _count(conn: Connection, rows: Any, cap: int) -> int:
    found = conn.execute(sa.select(sa.func.count()).select_from(rows.limit(cap).subquery()))
    return int(found.scalar_one())


def _rows(c: CompiledCondition) -> Any:
    if c.attr in SYSTEM_COLUMNS:
        return sa.select(jobs.c.id).where(_column_term(c, jobs))
    return sa.select(values.c.job_id).where(*_value_terms(c, values))


def _spread(c: CompiledCondition) -> int:
    """How broad ``c`` is likely to be when counting cannot tell: 0 for a condition on a type of
    many values (a time window, a number, a string, an owner, a jobid), 1 for one on a type of
    few values (states, done codes, booleans: a handful of keys share every job), 2 for a bare
    ``exists`` (every job with the attribute). A guess from the type alone, no query."""
    if c.op == "exists" or (c.op == "prefix" and not c.value):
        return 2
    if isinstance(c.type, EnumType | BooleanType):
        return 1
    return 0


def candidates(driver: CompiledCondition | None, others: list[CompiledCondition],
               owner: str | None) -> tuple[Any, Any]:  # fmt: skip
    """The candidate jobs in id order, and the column their position is read from.

    An ``eq`` on values walks its index entries, already in job order; another condition (on
    values, or on the jobid) gathers the job ids it names first (few: it was the narrowest), so
    the walk goes through the jobs by primary key and never scans the jobs to spare a sort.
    Without a driver the walk goes through the owner's jobs (the owner index is in id order) or
    every job. A job may come twice from a multi-valued attribute's equal values: the caller
    skips repeats."""
    columns = (jobs.c.id, jobs.c.jobid, jobs.c.key, jobs.c.owner, jobs.c.source)
    base, position = sa.select(*columns), jobs.c.id
    if driver is not None and driver.attr not in SYSTEM_COLUMNS and driver.op == "eq":
        joined = values.join(jobs, jobs.c.id == values.c.job_id)
        base = sa.select(*columns).select_from(joined).where(*_value_terms(driver, values))
        position = values.c.job_id
    elif driver is not None and driver.attr == SYSTEM_JOBID:
        named = jobs.alias("named")
        base = base.where(jobs.c.id.in_(sa.select(named.c.id).where(_column_term(driver, named))))
    elif driver is not None and driver.attr != SYSTEM_OWNER:
        base = base.where(jobs.c.id.in_(_rows(driver)))
    if owner is not None:
        base = base.where(jobs.c.owner == owner)
    for c in others:
        if c is not driver or c.attr == SYSTEM_OWNER:  # an owner driver is its own term
            base = base.where(_probe(c))
    return base.order_by(position), position


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


_COLUMN_OF: dict[str, Callable[[Any], Any]] = {
    SYSTEM_OWNER: lambda table: table.c.owner,
    SYSTEM_JOBID: lambda table: table.c.jobid,
}


def _column_term(c: CompiledCondition, table: Any) -> Any:
    """``c`` on the job's own column (owner, jobid: whole texts) of ``table``; None when it
    names every job (exists, ne, ...), so it cannot be where a walk starts."""
    column = _COLUMN_OF[c.attr](table)
    if c.origin not in (None, "SYSTEM"):
        return sa.false()
    if c.op == "eq":
        return column == c.value
    if c.op == "in":
        return column.in_(c.values)
    if c.op == "prefix" and c.value:
        return _range(column, c)
    return None


def _probe(c: CompiledCondition) -> Any:
    """``c`` as a per-job test: on the job's own columns, or EXISTS among its values."""
    if c.attr in SYSTEM_COLUMNS:
        term = _column_term(c, jobs)
        return sa.true() if term is None else term
    # Its own alias: the walk may itself come from index_values (an eq's entries).
    probe = values.alias("probe")
    return sa.exists().where(probe.c.job_id == jobs.c.id, *_value_terms(c, probe))


def _value_terms(c: CompiledCondition, table: Any) -> list[Any]:
    terms = [table.c.name == c.attr, _range(table.c.key, c)]
    if c.origin is not None:
        terms.append(table.c.origin == c.origin)
    return terms
