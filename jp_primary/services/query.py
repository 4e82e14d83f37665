"""Batch queries over typed attributes (POST /v1/query) and bulk retrieval (POST
/v1/jobs/attributes).

A query is checked once by the attribute library (``compile_conditions``: names, operators,
operands parsed as the attributes' types) and run as one keyset-paginated SQL statement
(``db/repositories/query.py``). Owners see their own jobs; admins, indexers and trusted services
see all. On PostgreSQL the statement has a time limit: a query that needs longer is cancelled
by the database and answered 503 with Retry-After, never left to hold a worker.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session

from jp_primary.attributes.conditions import (
    Condition,
    ConditionError,
    compile_conditions,
    qualified_name,
)
from jp_primary.attributes.registry import TypeRegistry
from jp_primary.attributes.types import KEY_CHARS
from jp_primary.auth.identity import Identity, Role
from jp_primary.db.repositories import jobs
from jp_primary.db.repositories import query as query_sql
from jp_primary.db.repositories.values import StoredValue
from jp_primary.db.session import Database
from jp_primary.errors import InvalidInput, StorageUnavailable
from jp_primary.services import access
from jp_primary.services.attributes import candidate_names

MAX_LIMIT = 10_000
MAX_SELECT = 64
MAX_BULK_JOBS = 1000
_SEE_ALL = frozenset({Role.ADMIN, Role.INDEXER, Role.TRUSTED})
_CURSOR_PREFIX = "jpq1:"  # job id order
_RANGE_CURSOR_PREFIX = "jpq2:"  # a range condition's order
_DIGITS = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True)
class Query:
    where: Sequence[Condition]
    select: Sequence[str] = ()
    latest: bool = False
    limit: int = 100
    after: str | None = None


@dataclass(frozen=True)
class JobValues:
    jobid: str
    key: str
    owner: str
    values: list[StoredValue]


@dataclass(frozen=True)
class QueryPage:
    jobs: list[JobValues]
    next: str | None  # the cursor of the following page; None when this one is the last


@dataclass(frozen=True)
class BulkValues:
    jobs: list[JobValues]
    unknown: list[str]  # jobids or keys of no registered job
    forbidden: list[str]  # jobids or keys of jobs the caller may not read


class QueryService:
    def __init__(self, db: Database, types: TypeRegistry, timeout_seconds: float) -> None:
        self.db = db
        self.types = types
        self.timeout_ms = int(timeout_seconds * 1000)

    async def query(self, identity: Identity, query: Query) -> QueryPage:
        """One page of the jobs ``identity`` may see that satisfy every condition."""
        try:
            compiled = compile_conditions(query.where, self.types)
        except ConditionError as exc:
            raise InvalidInput(f"where[{exc.index}]: {exc.message}") from None
        names = _select_names(query.select)
        if not 1 <= query.limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}")
        owner = None if identity.roles & _SEE_ALL else identity.subject
        ranged = query_sql.range_driver(compiled, owner) is not None
        after = decode_cursor(query.after, ranged)

        def run(session: Session) -> QueryPage:
            found = query_sql.find_jobs(
                session,
                compiled,
                after=after.job_id,
                after_position=after.position,
                limit=query.limit + 1,  # one more tells whether a next page exists
                owner=owner,
                timeout_ms=self.timeout_ms,
            )
            page = found[: query.limit]
            selected = query_sql.values_of(session, [j.id for j in page], names) if names else {}
            jobs_out = [
                JobValues(j.jobid, j.key, j.owner, _chosen(selected.get(j.id, []), query.latest))
                for j in page
            ]
            more = len(found) > query.limit
            last = page[-1] if more else None
            return QueryPage(jobs_out, None if last is None else encode_cursor(last))

        try:
            return await self.db.run(run)
        except query_sql.QueryCancelled:
            seconds = self.timeout_ms / 1000
            raise StorageUnavailable(
                f"the query ran longer than {seconds:g} s and was cancelled; make it more "
                "selective (an eq, in or prefix condition, a within of a shorter range) or ask "
                "for fewer jobs per page",
                retry_after=max(1, int(seconds)),
            ) from None

    async def values_of_jobs(
        self,
        identity: Identity,
        *,
        jobids: Sequence[str] = (),
        keys: Sequence[str] = (),
        names: Sequence[str] | None = None,
    ) -> BulkValues:
        """The values (all, or only ``names``) of up to 1,000 jobs, each checked readable."""
        if bool(jobids) == bool(keys):
            raise InvalidInput("give either jobids or keys (a non-empty list), not both")
        wanted = list(jobids or keys)
        if len(wanted) > MAX_BULK_JOBS:
            raise InvalidInput(f"at most {MAX_BULK_JOBS} jobs per call, got {len(wanted)}")
        if names is not None and len(names) > MAX_SELECT:
            raise InvalidInput(f"at most {MAX_SELECT} names, got {len(names)}")
        lookup = jobs.by_jobid if jobids else jobs.by_key
        candidates = candidate_names(list(names)) if names else None

        def run(session: Session) -> BulkValues:
            readable, unknown, forbidden = [], [], []
            for handle in dict.fromkeys(wanted):  # each once, in the order given
                job = lookup(session, handle)
                if job is None:
                    unknown.append(handle)
                elif not access.may_read(identity, job):
                    forbidden.append(handle)
                else:
                    readable.append(job)
            found = query_sql.values_of(session, [j.id for j in readable], candidates)
            listed = [JobValues(j.jobid, j.key, j.owner, found.get(j.id, [])) for j in readable]
            return BulkValues(listed, unknown, forbidden)

        return await self.db.run(run)


def _select_names(select: Sequence[str]) -> list[str]:
    if len(select) > MAX_SELECT:
        raise InvalidInput(f"select names at most {MAX_SELECT} attributes, got {len(select)}")
    names: list[str] = []
    for index, name in enumerate(select):
        try:
            names.append(qualified_name(name))
        except ValueError as exc:
            raise InvalidInput(f"select[{index}]: {exc}") from None
    return names


def _chosen(found: list[StoredValue], latest: bool) -> list[StoredValue]:
    """All values, or with ``latest`` the newest of each attribute (timestamp, then seq)."""
    if not latest:
        return found
    newest: dict[str, StoredValue] = {}
    for value in found:
        held = newest.get(value.name)
        if held is None or (value.timestamp, value.seq) > (held.timestamp, held.seq):
            newest[value.name] = value
    return sorted(newest.values(), key=lambda v: v.seq)


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: the last job's id, and in range order its key of the driving range
    (``position``; None in job id order). ``Cursor(0, None)`` is before the first page."""

    job_id: int
    position: str | None = None


def encode_cursor(last: query_sql.FoundJob) -> str:
    """An opaque cursor naming the last job of a page (clients pass it back as ``after``):
    ``jpq1:<id>`` in job id order, ``jpq2:<id>:<key>`` in a range's order."""
    if last.position is None:
        plain = f"{_CURSOR_PREFIX}{last.id}"
    else:
        plain = f"{_RANGE_CURSOR_PREFIX}{last.id}:{last.position}"
    return base64.urlsafe_b64encode(plain.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, ranged: bool) -> Cursor:
    """The position ``cursor`` names; ``ranged``: the query's pages are in a range's order (a
    cursor of the other order belongs to another query)."""
    if cursor is None:
        return Cursor(0)
    found = _parse_cursor(cursor)
    if found is None:
        raise InvalidInput(
            "after is not a cursor of this service; pass the next of a previous page"
        )
    if (found.position is not None) != ranged:
        raise InvalidInput(
            "after is a cursor of another query; pass the next of the previous page of this one"
        )
    return found


def _parse_cursor(cursor: str) -> Cursor | None:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        plain = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        return None
    if plain.startswith(_CURSOR_PREFIX):
        number, position = plain.removeprefix(_CURSOR_PREFIX), None
    elif plain.startswith(_RANGE_CURSOR_PREFIX):
        number, sep, position = plain.removeprefix(_RANGE_CURSOR_PREFIX).partition(":")
        if not sep or len(position) > KEY_CHARS or "\x00" in position:
            return None  # no index key is longer or holds NUL (PostgreSQL text cannot)
    else:
        return None
    return Cursor(int(number), position) if _DIGITS.fullmatch(number) else None
