"""User tags: appended as USER attribute values, never overwritten (WORM)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session

from jp_primary.attributes.names import tag_attribute
from jp_primary.auth.identity import Identity
from jp_primary.db.repositories import identities, values
from jp_primary.db.repositories.values import StoredValue
from jp_primary.db.session import Database
from jp_primary.errors import InvalidInput
from jp_primary.services import jobs

MAX_TAG_NAME = 255
MAX_TAG_VALUE = 64 * 1024


@dataclass(frozen=True)
class Tag:
    name: str
    value: str


def _validated(tag: Tag) -> Tag:
    if not tag.name or len(tag.name) > MAX_TAG_NAME:
        raise InvalidInput(f"tag name must have 1 to {MAX_TAG_NAME} characters")
    if len(tag.value.encode("utf-8")) > MAX_TAG_VALUE:
        raise InvalidInput(f"tag value longer than {MAX_TAG_VALUE} bytes")
    return tag


async def record(db: Database, identity: Identity, key: str, tags: list[Tag]) -> list[StoredValue]:
    checked = [_validated(t) for t in tags]

    def store(session: Session) -> list[StoredValue]:
        job = jobs.writable_job(session, identity, key)
        author = identities.identity_id(session, identity.subject)
        now = datetime.now(UTC)
        new = [
            values.NewValue(tag_attribute(t.name), t.value, "USER", now, author_id=author)
            for t in checked
        ]
        seqs = values.append(session, job.id, new)
        return [
            StoredValue(v.name, v.value, "USER", None, now, seq, identity.subject)
            for v, seq in zip(new, seqs, strict=True)
        ]

    return await db.run(store)


async def list_tags(db: Database, identity: Identity, key: str) -> list[StoredValue]:
    def load(session: Session) -> list[StoredValue]:
        job = jobs.readable_job(session, identity, key)
        return values.for_job(session, job.id, origin="USER")

    return await db.run(load)
