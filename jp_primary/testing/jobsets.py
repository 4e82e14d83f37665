"""Synthetic job populations for query tests and the query benchmark.

``synthetic_jobs(rng, count, ...)`` yields jobs with twelve attribute values each, shaped like
what the service stores for an L&B job: the three SYSTEM values, eight L&B-derived values and
user tags, with realistic proportions (most jobs Done or Cleared, a few failing, a tag per
campaign). ``store(session, jobs)`` writes them through the repository layer (``jobs.insert``
and ``values.append_for_jobs``, so the values are keyed by the session's type registry exactly as
the service keys them).
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from jp_primary.attributes.names import (
    LB_ATTRIBUTES,
    LB_TAG,
    SYSTEM_JOBID,
    SYSTEM_OWNER,
    SYSTEM_REGTIME,
)
from jp_primary.db.repositories import identities, jobs, values
from jp_primary.timefmt import rfc3339

LB_SERVER = "https://lb.example.org:9000"
STATES = (("Cleared", 45), ("Done", 25), ("Aborted", 10), ("Running", 8), ("Waiting", 7),
          ("Cancelled", 5))  # fmt: skip
DESTINATIONS = tuple(f"ce{n:02d}.example.org:8443/cream-pbs-{q}" for n in range(20)
                     for q in ("long", "short"))  # fmt: skip
START = datetime(2026, 1, 1, tzinfo=UTC)
CAMPAIGNS = tuple(f"2026-{m:02d}" for m in range(1, 13))
_KEY_ALPHABET = string.ascii_letters + string.digits + "-_"


@dataclass(frozen=True)
class SyntheticJob:
    jobid: str
    key: str
    owner: str
    registered_at: datetime
    values: tuple[tuple[str, str, str], ...]  # (qualified name, value, origin)


def owner_name(index: int) -> str:
    return f"/C=XX/O=Example/CN=user{index:04d}"


def synthetic_jobs(
    rng: random.Random,
    count: int,
    *,
    owners: int = 100,
    start: datetime = START,
    days: int = 100,
) -> Iterator[SyntheticJob]:
    """``count`` jobs, registered in time order over ``days`` days, spread over ``owners``."""
    labels = [s for s, _ in STATES]
    weights = [w for _, w in STATES]
    step = timedelta(days=days) / max(count, 1)
    for index in range(count):
        key = "".join(rng.choices(_KEY_ALPHABET, k=22))
        jobid = f"{LB_SERVER}/{key}"
        owner = owner_name(rng.randrange(owners))
        at = start + step * index
        status = rng.choices(labels, weights)[0]
        failed = status == "Aborted" or rng.random() < 0.1
        done_code = "FAILED" if failed else ("CANCELLED" if status == "Cancelled" else "OK")
        exit_code = str(rng.choice((1, 2, 127, 255))) if failed else "0"
        lb = f"{LB_ATTRIBUTES}:"
        items = (
            (SYSTEM_OWNER, owner, "SYSTEM"),
            (SYSTEM_REGTIME, rfc3339(at), "SYSTEM"),
            (SYSTEM_JOBID, jobid, "SYSTEM"),
            (lb + "status", status, "FILE"),
            (lb + "doneCode", done_code, "FILE"),
            (lb + "exitCode", exit_code, "FILE"),
            (lb + "destination", rng.choice(DESTINATIONS), "FILE"),
            (lb + "jobType", "SIMPLE", "FILE"),
            (lb + "stateEnterTime", rfc3339(at + timedelta(seconds=rng.randrange(86_400))), "FILE"),
            (lb + "cpuTime", str(rng.randrange(100_000)), "FILE"),
            (f"{LB_TAG}:campaign", rng.choice(CAMPAIGNS), "USER"),
            (f"{LB_TAG}:run", str(index % 1000), "USER"),
        )
        yield SyntheticJob(jobid, key, owner, at, items)


def store(session: Session, batch: Sequence[SyntheticJob]) -> list[int]:
    """Register ``batch`` and append its values, through the repositories; the new job ids."""
    ids: list[int] = []
    pending: list[tuple[int, values.NewValue]] = []
    for job in batch:
        owner_id = identities.identity_id(session, job.owner)
        new_id = jobs.insert(
            session,
            key=job.key,
            jobid=job.jobid,
            owner_id=owner_id,
            registrar_id=owner_id,
            at=job.registered_at,
        )
        if new_id is None:
            continue  # a key drawn twice: the first one stays
        ids.append(new_id)
        pending.extend(
            (new_id, values.NewValue(name, value, origin, job.registered_at))
            for name, value, origin in job.values
        )
    values.append_for_jobs(session, pending)
    return ids
