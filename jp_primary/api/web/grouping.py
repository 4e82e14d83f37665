"""Attribute values grouped for the job page: by origin, then by namespace."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from jp_primary.attributes import names


class StoredValue(Protocol):  # what the services hand out (api/ does not import db/)
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
    def author(self) -> str | None: ...


# Longest first, so that ``…/LB/Attributes:JDL:x`` lands under the JDL namespace.
_KNOWN = sorted(
    {getattr(names, n) for n in dir(names) if n.isupper() and isinstance(getattr(names, n), str)}
    & set(names.ALIASES.values())
    | {names.JP_PRIMARY, names.CONDOR_LOG},
    key=len,
    reverse=True,
)
LONG = 160  # values longer than this (JDL, history fragments) fold away
ORIGINS = {"SYSTEM": 0, "FILE": 1, "USER": 2}


@dataclass(frozen=True)
class Shown:
    local: str
    value: str
    timestamp: datetime
    detail: str

    @property
    def long(self) -> bool:
        return len(self.value) > LONG or "\n" in self.value

    @property
    def preview(self) -> str:
        first = self.value.splitlines()[0] if self.value else ""
        return (first[:80] + "…") if len(first) > 80 or self.long else first


@dataclass
class Group:
    origin: str
    namespace: str
    values: list[Shown] = field(default_factory=list)


def split_name(name: str) -> tuple[str, str]:
    for namespace in _KNOWN:
        if name.startswith(namespace + ":"):
            return namespace, name[len(namespace) + 1 :]
    namespace, sep, local = name.rpartition(":")
    return (namespace, local) if sep else ("", name)


def grouped(values: Sequence[StoredValue]) -> list[Group]:
    groups: dict[tuple[str, str], Group] = {}
    for value in values:
        namespace, local = split_name(value.name)
        group = groups.setdefault(
            (value.origin, namespace), Group(value.origin, namespace or "(no namespace)")
        )
        detail = value.origin_detail or (value.author or "")
        group.values.append(Shown(local, value.value, value.timestamp, detail))
    return sorted(groups.values(), key=lambda g: (ORIGINS.get(g.origin, 9), g.namespace))


@dataclass(frozen=True)
class ShownTag:
    name: str  # a plain tag's own name; a tag in another namespace keeps its full name
    value: str
    author: str | None
    timestamp: datetime


def tags(values: Sequence[StoredValue]) -> list[ShownTag]:
    shown = []
    for value in values:
        if value.origin != "USER":
            continue
        namespace, local = split_name(value.name)
        name = local if namespace == names.LB_TAG else value.name
        shown.append(ShownTag(name, value.value, value.author, value.timestamp))
    return shown
