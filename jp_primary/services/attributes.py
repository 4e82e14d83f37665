"""Single-job attribute retrieval."""

from __future__ import annotations

from sqlmodel import Session

from jp_primary.attributes.names import expand, tag_attribute
from jp_primary.auth.identity import Identity
from jp_primary.db.repositories import values
from jp_primary.db.repositories.jobs import JobInfo
from jp_primary.db.repositories.values import StoredValue
from jp_primary.db.session import Database
from jp_primary.services import jobs


def candidate_names(requested: list[str]) -> list[str]:
    """Stored names that answer the requested ones: aliases expanded, and a bare tag name also
    finds the tag recorded under the jp-lbtag namespace (as the original returned tags for any
    matching name)."""
    found: list[str] = []
    for name in requested:
        for candidate in (expand(name), tag_attribute(name)):
            if candidate not in found:
                found.append(candidate)
    return found


class AttributeService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(
        self, identity: Identity, key: str, names: list[str] | None
    ) -> tuple[JobInfo, list[StoredValue]]:
        """The job (readable by ``identity``) and its values, all or only the named ones."""

        def load(session: Session) -> tuple[JobInfo, list[StoredValue]]:
            job = jobs.readable_job(session, identity, key)
            wanted = candidate_names(names) if names else None
            return job, values.for_job(session, job.id, wanted)

        return await self.db.run(load)
