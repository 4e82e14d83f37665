"""The pure core of a feed: which jobs match, and the records sent for them (no I/O).

The condition evaluation is the shared attribute library's (``jp_primary.attributes``): a
condition holds when any value of its attribute satisfies it, all must hold.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property, lru_cache
from typing import Any, Protocol

import orjson

from jp_primary.attributes.conditions import CompiledCondition, matches
from jp_primary.timefmt import rfc3339


class Value(Protocol):
    """One stored value as the feed reads it (``db.repositories.feed_values.FeedValue``)."""

    @property
    def name(self) -> str: ...
    @property
    def value(self) -> str: ...
    @property
    def origin(self) -> str: ...
    @property
    def origin_detail(self) -> str | None: ...
    @property
    def timestamp(self) -> datetime: ...
    @property
    def seq(self) -> int: ...


@dataclass(frozen=True)
class Selection:
    """What a feed asks for: requested attribute names and namespace patterns, and compiled
    conditions. Names compare case-insensitively, patterns too (by their lowered prefix)."""

    attributes: tuple[str, ...]  # qualified names
    conditions: tuple[CompiledCondition, ...]
    condition_names: tuple[str, ...]  # the qualified names the conditions look at
    prefixes: tuple[str, ...] = ()  # qualified prefixes of the requested patterns (no "*")

    @cached_property  # read per value: computed once
    def requested_lower(self) -> frozenset[str]:
        return frozenset(n.lower() for n in self.attributes)

    @cached_property
    def needed_lower(self) -> frozenset[str]:
        """Exact names whose values a feed reads: requested ones and those its conditions
        test (the patterns' names are in ``prefixes_lower``)."""
        return self.requested_lower | {n.lower() for n in self.condition_names}

    @cached_property
    def condition_lower(self) -> frozenset[str]:
        return frozenset(n.lower() for n in self.condition_names)

    @cached_property
    def prefixes_lower(self) -> tuple[str, ...]:
        return tuple(p.lower() for p in self.prefixes)

    def requests(self, name_lower: str) -> bool:
        """Whether a value of this (lowered) name is sent."""
        return name_lower in self.requested_lower or name_lower.startswith(self.prefixes_lower)

    def needs(self, name_lower: str) -> bool:
        """Whether a value of this (lowered) name is sent or tested by a condition."""
        return name_lower in self.needed_lower or name_lower.startswith(self.prefixes_lower)


def job_matches(selection: Selection, values: Iterable[Value]) -> bool:
    return tested_match(selection, ((v.name, v.value, v.origin) for v in values))


def tested_match(selection: Selection, values: Iterable[tuple[str, str, str]]) -> bool:
    """Whether a job with these ``(name, value, origin)`` values matches."""
    if not selection.conditions:
        return True
    tested = selection.condition_lower
    by_name: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for name, value, origin in values:  # only the ones the conditions test: there may be many
        lowered = name.lower()
        if lowered in tested:
            by_name[lowered].append((value, origin))
    # The library looks values up by the condition's qualified name; names compare
    # case-insensitively everywhere in the service.
    keyed = {name: by_name.get(name.lower(), []) for name in selection.condition_names}
    return matches(selection.conditions, keyed)


@lru_cache(maxsize=4096)
def _stamp(at: datetime) -> str:
    # Values of one file or commit share their timestamp: format each one once.
    return rfc3339(at)


def value_body(v: Value) -> dict[str, Any]:
    return {
        "name": v.name,
        "value": v.value,
        "origin": v.origin,
        "origin_detail": v.origin_detail,
        "timestamp": _stamp(v.timestamp),
        "seq": v.seq,
    }


@dataclass
class JobRecord:
    jobid: str
    owner: str
    values: list[dict[str, Any]] = field(default_factory=list)
    retracted: list[int] = field(default_factory=list)
    removed: bool = False

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"jobid": self.jobid, "owner": self.owner, "values": self.values}
        if self.retracted:
            out["retracted"] = self.retracted
        if self.removed:
            out["removed"] = True
        return out


def requested_values(
    selection: Selection, values: Sequence[Value], after_seq: int = 0
) -> list[dict[str, Any]]:
    """The bodies of the requested values with ``seq > after_seq``, in seq order."""
    wanted = selection.requests
    return [value_body(v) for v in values if v.seq > after_seq and wanted(v.name.lower())]


def encode(records: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> str:
    """Compact JSON, UTF-8 unescaped (orjson: a history batch is thousands of values)."""
    return orjson.dumps(records).decode()
