"""Attribute values and the global change sequence.

``allocate_seq`` increments the single counter row. The row lock it takes is held until the
transaction ends, so transactions that create values commit one after another in seq order: a
reader that has seen ``seq = n`` can never later find a newly committed value with ``seq <= n``
(and no gap is ever visible, since a rolled-back increment is rolled back too). Call it as the
last step before commit to keep that critical section short.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, bindparam, delete, func, insert, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, SQLModel, col, select

from jp_primary.attributes.registry import TypeRegistry, default_registry
from jp_primary.db.models import AttributeValueRow, ChangeCounterRow, IdentityRow
from jp_primary.db.session import TYPES_KEY

# Sessions opened without a registry still type the system attributes.
SYSTEM_ONLY = default_registry()


@dataclass(frozen=True)
class NewValue:
    name: str
    value: str
    origin: str
    timestamp: datetime
    origin_detail: str | None = None
    file_id: int | None = None
    author_id: int | None = None


@dataclass(frozen=True)
class StoredValue:
    name: str
    value: str
    origin: str
    origin_detail: str | None
    timestamp: datetime
    seq: int
    author: str | None


_COUNTER = SQLModel.metadata.tables["change_counter"]
_ALLOCATE = (
    update(_COUNTER)
    .where(_COUNTER.c.id == 1)
    .values(last_seq=_COUNTER.c.last_seq + bindparam("count"))
    .returning(_COUNTER.c.last_seq)
)
_INSERT = insert(SQLModel.metadata.tables["attribute_values"])
_COLUMNS = (
    "seq",
    "job_id",
    "name",
    "value",
    "origin",
    "origin_detail",
    "timestamp",
    "recorded_at",
    "file_id",
    "author_id",
    "index_key",
)
# PostgreSQL takes a group's values (a dump yields about 40) in one COPY: a third of the client's
# CPU time of the same rows as an executemany of INSERTs, and less of the server's.
_COPY = f"COPY attribute_values ({', '.join(_COLUMNS)}) FROM STDIN"


def allocate_seq(session: Session, count: int) -> int:
    """Reserve ``count`` consecutive sequence numbers; return the first."""
    last = session.connection().execute(_ALLOCATE, {"count": count}).scalar_one()
    return int(last) - count + 1


def append(session: Session, job_id: int, values: Sequence[NewValue]) -> list[int]:
    """Store values of one job with fresh seqs (in the given order); return the seqs."""
    return append_for_jobs(session, [(job_id, v) for v in values])


def types_of(session: Session) -> TypeRegistry:
    """The attribute types the session's ``Database`` was given (db/session.py)."""
    found = session.info.get(TYPES_KEY)
    return found if isinstance(found, TypeRegistry) else SYSTEM_ONLY


def append_for_jobs(session: Session, values: Sequence[tuple[int, NewValue]]) -> list[int]:
    """Store values of several jobs with one seq allocation and one insert (group commits).

    Each value gets its index key under its attribute's type (the session's registry)."""
    if not values:
        return []
    types = types_of(session)
    first = allocate_seq(session, len(values))
    now = datetime.now(UTC)
    rows = [
        (
            first + i,
            job_id,
            v.name,
            v.value,
            v.origin,
            v.origin_detail,
            _utc(v.timestamp),
            now,
            v.file_id,
            v.author_id,
            types.type_of(v.name).index_key(v.value),
        )
        for i, (job_id, v) in enumerate(values)
    ]
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        _copy(connection, rows)
    else:
        connection.execute(_INSERT, [dict(zip(_COLUMNS, row, strict=True)) for row in rows])
    return list(range(first, first + len(values)))


def _utc(moment: datetime) -> datetime:
    """As the column's type stores it (``UTCDateTime``, which COPY bypasses): aware, in UTC."""
    if moment.tzinfo is UTC:
        return moment  # most are (a conversion per value was a visible share of a commit)
    if moment.utcoffset() is None:
        raise ValueError("Datetime values must have timezone information")
    return moment.astimezone(UTC)


def _copy(connection: Connection, rows: Sequence[tuple[object, ...]]) -> None:
    driver = connection.connection.driver_connection  # psycopg's, in this transaction
    assert driver is not None
    try:
        with driver.cursor() as cursor, cursor.copy(_COPY) as copy:
            for row in rows:
                copy.write_row(row)
    except connection.dialect.loaded_dbapi.Error as exc:
        # As SQLAlchemy raises a statement's errors: IntegrityError, OperationalError, ...
        raise DBAPIError.instance(_COPY, None, exc, connection.dialect.loaded_dbapi.Error) from exc


def for_job(
    session: Session, job_id: int, names: Sequence[str] | None = None, origin: str | None = None
) -> list[StoredValue]:
    stmt = (
        select(AttributeValueRow, IdentityRow.subject)
        .outerjoin(IdentityRow, col(IdentityRow.id) == col(AttributeValueRow.author_id))
        .where(AttributeValueRow.job_id == job_id)
        .order_by(col(AttributeValueRow.seq))
    )
    if names is not None:
        # Names match case-insensitively, as the original L&B attributes and ClassAds do.
        stmt = stmt.where(func.lower(AttributeValueRow.name).in_([n.lower() for n in names]))
    if origin is not None:
        stmt = stmt.where(AttributeValueRow.origin == origin)
    return [
        StoredValue(v.name, v.value, v.origin, v.origin_detail, v.timestamp, v.seq, author)
        for v, author in session.exec(stmt)
    ]


def count_for_job(session: Session, job_id: int, origin: str | None = None) -> int:
    stmt = (
        select(func.count())
        .select_from(AttributeValueRow)
        .where(AttributeValueRow.job_id == job_id)
    )
    if origin is not None:
        stmt = stmt.where(AttributeValueRow.origin == origin)
    return int(session.exec(stmt).one())


def for_file(session: Session, file_id: int) -> list[StoredValue]:
    stmt = (
        select(AttributeValueRow)
        .where(col(AttributeValueRow.file_id) == file_id)
        .order_by(col(AttributeValueRow.seq))
    )
    return [
        StoredValue(v.name, v.value, v.origin, v.origin_detail, v.timestamp, v.seq, None)
        for v in session.exec(stmt)
    ]


def remove_for_file(session: Session, file_id: int) -> int:
    """Drop a file's derived values (re-extraction replaces them with new ones, new seqs)."""
    result = session.execute(
        delete(AttributeValueRow).where(col(AttributeValueRow.file_id) == file_id)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def last_seq(session: Session) -> int:
    return int(
        session.exec(select(ChangeCounterRow.last_seq).where(ChangeCounterRow.id == 1)).one()
    )


def remove_for_job(session: Session, job_id: int) -> None:
    """Drop every value of a job (a takeover quarantines them first)."""
    session.execute(delete(AttributeValueRow).where(col(AttributeValueRow.job_id) == job_id))
