"""Job registration and lookup."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from sqlmodel import Session

from jp_primary.attributes import names
from jp_primary.auth.identity import Identity, Role
from jp_primary.backends.base import StorageBackend
from jp_primary.db.repositories import identities, jobs, values
from jp_primary.db.repositories.jobs import JobInfo
from jp_primary.db.session import Database
from jp_primary.errors import Conflict, Forbidden, InvalidInput, JPError, NotFound
from jp_primary.plugins.condor.jobids import condor_key, parse_condor_jobid
from jp_primary.services import access, quarantine
from jp_primary.services.batching import Batcher, database_item_caused, isolating
from jp_primary.text import SUBJECT_MAX, check_text, shown
from jp_primary.timefmt import rfc3339

log = logging.getLogger(__name__)

_KEY = re.compile(r"[A-Za-z0-9._~-]{1,128}")


def job_key(jobid: str) -> str:
    """The URL-safe handle of a jobid: its last path segment (the L&B unique part).

    A jobid is an absolute http(s) URL whose path ends in that unique part, as L&B jobids
    (``https://lb.example.org:9000/<22 characters>``) and CREAM jobids are, or the jobid of an
    HTCondor job without an L&B jobid, ``condor://<schedd>[:port]/<cluster>.<proc>``, whose key
    is ``<schedd>_<cluster>.<proc>`` (docs/condor.md).
    """
    check_text(jobid, "jobid", SUBJECT_MAX)
    if any(c.isspace() or ord(c) < 32 for c in jobid):
        raise InvalidInput("malformed jobid: contains whitespace or control characters")
    if jobid.lower().startswith("condor:"):
        return _condor_key(jobid)
    try:
        parts = urlsplit(jobid)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket: https://[::1/x
        raise InvalidInput(f"malformed jobid {jobid!r}: {exc}") from None
    key = parts.path.rsplit("/", 1)[-1]
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
        raise InvalidInput(f"malformed jobid {jobid!r}: expected https://<server>[:port]/<unique>")
    if not _KEY.fullmatch(key) or key in (".", ".."):
        raise InvalidInput(f"malformed jobid {jobid!r}: the unique part must be [A-Za-z0-9._~-]")
    return key


def _condor_key(jobid: str) -> str:
    parsed = parse_condor_jobid(jobid)
    if parsed is None:
        raise InvalidInput(
            f"malformed jobid {jobid!r}: expected condor://<schedd host>[:port]/<cluster>.<proc>"
        )
    key = condor_key(*parsed)
    if not _KEY.fullmatch(key):
        raise InvalidInput(f"malformed jobid {jobid!r}: the schedd host name is too long")
    return key


@dataclass(frozen=True)
class Registration:
    job: JobInfo
    created: bool
    quarantined: int | None = None  # the quarantine entry of a takeover (services.quarantine)


def owner_for(identity: Identity, owner: str | None) -> str:
    if owner is None or owner == identity.subject:
        return identity.subject
    if not identity.has(Role.TRUSTED):
        raise Forbidden("only trusted services may register jobs for another owner")
    check_text(owner, "owner", SUBJECT_MAX)
    if not owner.strip():
        raise InvalidInput("owner must be a non-empty subject")
    return owner


def _system_values(jobid: str, owner: str, at: datetime) -> list[values.NewValue]:
    return [
        values.NewValue(names.SYSTEM_OWNER, owner, "SYSTEM", at),
        values.NewValue(names.SYSTEM_REGTIME, rfc3339(at), "SYSTEM", at),
        values.NewValue(names.SYSTEM_JOBID, jobid, "SYSTEM", at),
    ]


@dataclass
class ValueSink:
    """Values of several registrations, stored with one seq allocation at the end of the
    transaction (``flush``): taking the counter's row lock last keeps it short and free of
    lock-order cycles with writers that hold a job row (``writable_job``)."""

    pending: list[tuple[int, values.NewValue]] = dataclasses.field(default_factory=list)
    # (job id, retracted seqs, the first pending value replacing them)
    retractions: list[tuple[int, list[int], values.NewValue]] = dataclasses.field(
        default_factory=list
    )

    def drop(self, job_id: int) -> None:
        """Forget the pending values of a job taken over in this very group."""
        self.pending = [(j, v) for j, v in self.pending if j != job_id]

    def flush(self, session: Session) -> None:
        seqs = values.append_for_jobs(session, self.pending)
        where = {id(v): i for i, (_, v) in enumerate(self.pending)}
        for job_id, retracted, first in self.retractions:
            quarantine.announce(session, job_id, retracted, seqs[where[id(first)]])


def register_in(
    session: Session,
    identity: Identity,
    jobid: str,
    owner: str,
    sink: ValueSink | None = None,
    retention: timedelta = timedelta(days=quarantine.DEFAULT_RETENTION_DAYS),
) -> Registration:
    """Register one job inside the caller's transaction (idempotent for the same owner).

    The job's SYSTEM values are stored at once, or, with ``sink``, left there for the caller to
    store together with other jobs' (``ValueSink.flush``: one seq allocation for a whole group).
    A trusted registration takes over a job no trusted service registered
    (``services.quarantine``)."""
    if sink is None:
        sink = ValueSink()
        registration = register_in(session, identity, jobid, owner, sink, retention)
        sink.flush(session)
        return registration
    key = job_key(jobid)
    now = datetime.now(UTC)
    trusted = identity.has(Role.TRUSTED)
    owner_id = identities.identity_id(session, owner)
    registrar_id = identities.identity_id(session, identity.subject)
    new_id = jobs.insert(
        session,
        key=key,
        jobid=jobid,
        owner_id=owner_id,
        registrar_id=registrar_id,
        at=now,
        trusted=trusted,
    )
    if new_id is not None:
        sink.pending.extend((new_id, v) for v in _system_values(jobid, owner, now))
        record = JobInfo(new_id, key, jobid, owner, now, identity.subject, trusted)
        return Registration(record, True)
    existing = _must(jobs.by_key(session, key))
    same = existing.jobid == jobid and existing.owner == owner
    if trusted and not existing.trusted and not same:
        taken = quarantine.take_over(
            session,
            existing,
            identity,
            jobid=jobid,
            owner_id=owner_id,
            registrar_id=registrar_id,
            owner=owner,
            now=now,
            retention=retention,
        )
        if taken is not None:
            system = _system_values(jobid, owner, now)
            sink.drop(existing.id)  # the squatter's registration may be in this same group
            sink.retractions.append((existing.id, taken.retracted, system[0]))
            sink.pending.extend((existing.id, v) for v in system)
            record = JobInfo(existing.id, key, jobid, owner, now, identity.subject, True)
            return Registration(record, True, taken.quarantine_id)
        existing = _must(jobs.by_key(session, key))  # a trusted registration came first
    if existing.jobid != jobid:
        raise Conflict(f"the key {key!r} is already used by another jobid")
    if existing.owner != owner:
        raise Conflict("the job is already registered to another owner")
    if trusted and not existing.trusted:
        jobs.mark_trusted(session, existing.id)
        existing = dataclasses.replace(existing, trusted=True)
    return Registration(existing, created=False)


def _must(job: JobInfo | None) -> JobInfo:
    if job is None:
        raise NotFound("no such job")
    return job


@dataclass(frozen=True)
class RegistrationRequest:
    identity: Identity
    jobid: str
    owner: str


def record_subjects(session: Session, subjects: Iterable[str]) -> None:
    """Insert the subjects a transaction will name, in one order (sorted) for every transaction:
    two group or bulk registrations that each create several new subjects would otherwise wait
    for each other's uncommitted rows (a deadlock, seen in PostgreSQL's log)."""
    for subject in sorted(set(subjects)):
        identities.identity_id(session, subject)


def _register_each(
    session: Session, requests: list[RegistrationRequest], retention: timedelta
) -> list[Registration | Exception]:
    """Register a group in one transaction; a refused item does not disturb the others (its
    only side effect, recording the subjects it names, is harmless)."""
    outcomes: list[Registration | Exception] = []
    sink = ValueSink()
    record_subjects(session, (s for req in requests for s in (req.owner, req.identity.subject)))
    for req in requests:
        try:
            outcomes.append(
                register_in(session, req.identity, req.jobid, req.owner, sink, retention)
            )
        except (Conflict, InvalidInput) as exc:
            outcomes.append(exc)
    sink.flush(session)
    return outcomes


class Registrar:
    """Single registrations, group-committed (see ``services.batching``)."""

    def __init__(
        self,
        db: Database,
        backend: StorageBackend | None = None,
        retention: timedelta = timedelta(days=quarantine.DEFAULT_RETENTION_DAYS),
    ) -> None:
        self._db = db
        self._quarantine = (
            quarantine.QuarantineService(db, backend) if backend is not None else None
        )
        self._retention = retention
        self._batcher: Batcher[RegistrationRequest, Registration] = Batcher(
            self._run, item_caused=database_item_caused
        )

    async def _run(self, requests: list[RegistrationRequest]) -> list[Registration | Exception]:
        return await self._db.run(lambda s: _register_each(s, requests, self._retention))

    @property
    def retention(self) -> timedelta:
        return self._retention

    async def secure(self, quarantined: int | None) -> None:
        """Secure the bytes of a job taken over (``services.quarantine``), if any."""
        if quarantined is not None and self._quarantine is not None:
            await self._quarantine.secure(quarantined)

    async def register(self, identity: Identity, jobid: str, owner: str | None) -> Registration:
        resolved = owner_for(identity, owner)
        job_key(jobid)  # reject malformed ids before they join a batch
        reg = await self._batcher.submit(RegistrationRequest(identity, jobid, resolved))
        await self.secure(reg.quarantined)
        return reg

    async def register_bulk(self, identity: Identity, items: list[BulkItem]) -> list[BulkResult]:
        """Register a batch in one transaction; each item reports its own outcome. Should the
        transaction fail, the items are retried in parts so that only the failing ones fail."""

        async def run(part: list[BulkItem]) -> list[BulkOutcome]:
            return await self._db.run(lambda s: _bulk_in(s, identity, part, self._retention))

        results = []
        outcomes = await isolating(run, items, database_item_caused)
        for item, outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, Exception):
                if not database_item_caused(outcome):
                    raise outcome  # the database is away: the whole request fails (503/500)
                results.append(_failed(item, outcome))
                continue
            result, quarantined = outcome
            await self.secure(quarantined)
            results.append(result)
        return results

    async def close(self) -> None:
        await self._batcher.close()


@dataclass(frozen=True)
class BulkItem:
    jobid: str
    owner: str | None


@dataclass(frozen=True)
class BulkResult:
    jobid: str
    status: int
    job: JobInfo | None = None
    error: str | None = None
    detail: str | None = None


# One bulk item's outcome, with the quarantine entry its takeover made (bytes to secure after).
BulkOutcome = tuple["BulkResult", int | None]


def _bulk_in(
    session: Session, identity: Identity, items: list[BulkItem], retention: timedelta
) -> list[BulkOutcome]:
    outcomes: list[BulkOutcome] = []
    sink = ValueSink()
    owners: list[str | JPError] = []
    for item in items:
        try:
            owners.append(owner_for(identity, item.owner))
        except (InvalidInput, Forbidden) as exc:
            owners.append(exc)
    record_subjects(session, [identity.subject, *(o for o in owners if isinstance(o, str))])
    for item, owner_or_error in zip(items, owners, strict=True):
        try:
            if isinstance(owner_or_error, JPError):
                raise owner_or_error
            reg = register_in(session, identity, item.jobid, owner_or_error, sink, retention)
        except (Conflict, InvalidInput, Forbidden) as exc:
            status = exc.status_code
            result = BulkResult(shown(item.jobid), status, None, exc.error, exc.detail)
            outcomes.append((result, None))
        else:
            result = BulkResult(item.jobid, 201 if reg.created else 200, reg.job)
            outcomes.append((result, reg.quarantined))
    sink.flush(session)
    return outcomes


def _failed(item: BulkItem, exc: Exception) -> BulkResult:
    if isinstance(exc, JPError):
        return BulkResult(shown(item.jobid), exc.status_code, None, exc.error, exc.detail)
    log.error("bulk registration of %r failed", item.jobid, exc_info=exc)
    detail = "this job could not be stored (the others were); report it to the operators"
    return BulkResult(shown(item.jobid), 500, None, "InternalError", detail)


def _by_key(session: Session, key: str) -> JobInfo:
    job = jobs.by_key(session, key)
    if job is None:
        raise NotFound(f"no job with key {key!r}")
    return job


def readable_job(session: Session, identity: Identity, key: str) -> JobInfo:
    job = _by_key(session, key)
    access.ensure_read(identity, job)
    return job


def readable_job_by_jobid(session: Session, identity: Identity, jobid: str) -> JobInfo:
    job = jobs.by_jobid(session, jobid)
    if job is None:
        raise NotFound("no job with that jobid")
    access.ensure_read(identity, job)
    return job


def writable_job(
    session: Session, identity: Identity, key: str, *, serialised: bool = False
) -> JobInfo:
    """The job, checked writable by ``identity`` and share-locked: a takeover
    (``services.quarantine``) waits for this transaction, or this one sees the new owner.
    ``serialised`` also makes this job's other serialised writers wait (per-job totals)."""
    job = jobs.by_key_for_write(session, key, serialised=serialised)
    if job is None:
        raise NotFound(f"no job with key {key!r}")
    access.ensure_write(identity, job)
    return job


def job_by_id(session: Session, job_id: int) -> JobInfo:
    return _must(jobs.by_id(session, job_id))
