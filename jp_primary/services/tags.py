"""User tags: appended as USER attribute values, never overwritten (WORM).

A tag goes to jp-lbtag (an unqualified name) or to a namespace of the user's own; the namespaces
the service and its plugins write (System, L&B, JDL, sandboxes, HTCondor, jp_primary) are refused,
so no tag can pass for a system or derived value. Volume is capped per request and per job
(``TagLimits``; docs/api-limits.md).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session

from jp_primary.attributes.names import (
    RESERVED_NAMESPACES,
    USER_NAMESPACES,
    reserved_namespace,
    tag_attribute,
)
from jp_primary.auth.identity import Identity
from jp_primary.db.repositories import identities, values
from jp_primary.db.repositories.values import StoredValue
from jp_primary.db.session import Database
from jp_primary.errors import InvalidInput, PayloadTooLarge
from jp_primary.plugins.base import ExtractionProblem
from jp_primary.plugins.registry import PluginRegistry
from jp_primary.services import jobs as job_access
from jp_primary.text import NAME_MAX, VALUE_MAX, check_text


@dataclass(frozen=True)
class Tag:
    name: str
    value: str


@dataclass(frozen=True)
class TagLimits:
    per_request: int = 100
    per_job: int = 1000
    value_chars: int = 16384


def reserved_namespaces(plugins: PluginRegistry) -> tuple[str, ...]:
    """The namespaces no user tag may use: the built-in ones and every plugin's own."""
    declared = [ns for ns in plugins.namespaces() if ns not in USER_NAMESPACES]
    return tuple(dict.fromkeys([*RESERVED_NAMESPACES, *declared]))


def user_tag_problem(name: str, reserved: Collection[str]) -> str | None:
    """Why a tag called ``name`` may not be recorded (None when it may)."""
    namespace = reserved_namespace(tag_attribute(name), reserved)
    if namespace is None:
        return None
    return (
        f"tag {name!r} is in the reserved namespace {namespace}, which only the service writes; "
        "use an unqualified name (recorded under jp-lbtag, e.g. 'color' or 'lbtag:color') or a "
        "namespace of your own (e.g. 'https://my.vo.example/tags:color')"
    )


def screen_file_tags(
    tags: list[tuple[str, str]], reserved: Collection[str]
) -> tuple[list[tuple[str, str]], list[ExtractionProblem]]:
    """The tags a file (an L&B dump's namespaced UserTags) may record, and problems for the rest."""
    allowed, problems = [], []
    for name, value in tags:
        problem = user_tag_problem(name, reserved)
        if problem is None:
            allowed.append((name, value))
        else:
            problems.append(ExtractionProblem(f"user tag not recorded: {problem}"))
    return allowed, problems


class TagService:
    def __init__(self, db: Database, limits: TagLimits, reserved: Collection[str]) -> None:
        self.db = db
        self.limits = limits
        self.reserved = tuple(reserved)

    def _checked(self, tags: list[Tag]) -> list[Tag]:
        if len(tags) > self.limits.per_request:
            raise PayloadTooLarge(
                f"{len(tags)} tags in one request; at most {self.limits.per_request} "
                "(JP_MAX_TAGS_PER_REQUEST): send them in several requests"
            )
        for tag in tags:
            check_text(tag.name, "tag name", NAME_MAX)
            if not tag.name:
                raise InvalidInput("a tag name must not be empty")
            if len(tag.value) > self.limits.value_chars:
                raise PayloadTooLarge(
                    f"the value of tag {tag.name!r} has {len(tag.value)} characters; at most "
                    f"{self.limits.value_chars} (JP_MAX_TAG_VALUE)"
                )
            check_text(tag.value, f"the value of tag {tag.name!r}", VALUE_MAX)
            problem = user_tag_problem(tag.name, self.reserved)
            if problem is not None:
                raise InvalidInput(problem)
        return tags

    async def record(self, identity: Identity, key: str, tags: list[Tag]) -> list[StoredValue]:
        checked = self._checked(tags)
        per_job = self.limits.per_job

        def store(session: Session) -> list[StoredValue]:
            # Concurrent taggers of one job count one after another.
            job = job_access.writable_job(session, identity, key, serialised=True)
            held = values.count_for_job(session, job.id, origin="USER")
            if held + len(checked) > per_job:
                raise InvalidInput(
                    f"the job holds {held} tags; at most {per_job} per job (JP_MAX_TAGS_PER_JOB), "
                    f"so these {len(checked)} cannot be added"
                )
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

        return await self.db.run(store)

    async def list_tags(self, identity: Identity, key: str) -> list[StoredValue]:
        def load(session: Session) -> list[StoredValue]:
            job = job_access.readable_job(session, identity, key)
            return values.for_job(session, job.id, origin="USER")

        return await self.db.run(load)
