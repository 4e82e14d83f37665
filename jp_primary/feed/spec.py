"""What a subscriber asks for, checked once at subscription and compiled again by workers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jp_primary.attributes.conditions import Condition, ConditionError, compile_conditions
from jp_primary.attributes.names import expand, pattern_prefix
from jp_primary.attributes.registry import TypeRegistry
from jp_primary.errors import InvalidInput
from jp_primary.feed.matcher import Selection

CONDITION_FIELDS = ("attr", "op", "value", "value2", "values", "origin")


@dataclass(frozen=True)
class Subscription:
    attributes: list[str]  # qualified names and namespace patterns (``<prefix>*``)
    conditions: list[dict[str, Any]]  # the wire objects, stored as given
    history: bool
    continuous: bool
    ttl_seconds: int
    destination: str | None = None
    notify_removed: bool = False


def qualified_attributes(names: Sequence[str]) -> list[str]:
    """Aliases expanded, each name once (first spelling kept), in the given order.

    An entry ending in ``*`` is a namespace pattern (``tag:*``): it selects every attribute whose
    qualified name starts with the expanded prefix. ``*`` is allowed only at the end, and a
    pattern needs a namespace, so a bare ``*`` (every attribute) is refused."""
    out: list[str] = []
    seen: set[str] = set()
    for index, name in enumerate(names):
        if "*" in name[:-1]:
            raise InvalidInput(
                f"attributes[{index}]: {name!r} has '*' before its end; a pattern is a prefix "
                "followed by one '*' (tag:*)"
            )
        qualified = expand(name)
        if ":" not in qualified:
            raise InvalidInput(
                f"attributes[{index}]: {name!r} has no namespace; write it with an alias "
                "(lb:status, tag:color, system:owner, tag:*) or the full namespace URI"
            )
        if qualified.lower() not in seen:
            seen.add(qualified.lower())
            out.append(qualified)
    return out


def _condition(raw: dict[str, Any]) -> Condition:
    values = raw.get("values")
    return Condition(
        attr=raw.get("attr") or "",
        op=raw.get("op") or "",
        value=raw.get("value"),
        value2=raw.get("value2"),
        values=tuple(values) if values is not None else None,
        origin=raw.get("origin"),
    )


def selection_of(
    attributes: Sequence[str], conditions: Sequence[dict[str, Any]], registry: TypeRegistry
) -> Selection:
    """Compile a feed's conditions; a bad one is a 422 naming it (``conditions[i]: ...``)."""
    try:
        compiled = compile_conditions([_condition(c) for c in conditions], registry)
    except ConditionError as exc:
        raise InvalidInput(f"conditions[{exc.index}]: {exc.message}") from None
    names = tuple(dict.fromkeys(c.attr for c in compiled))
    exact = tuple(a for a in attributes if pattern_prefix(a) is None)
    prefixes = tuple(p for p in map(pattern_prefix, attributes) if p is not None)
    return Selection(exact, tuple(compiled), names, prefixes)
