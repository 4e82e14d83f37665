"""Query and feed conditions: validated once, evaluated in Python or translated to SQL.

A condition ``{attr, op, value?, value2?, values?, origin?}`` holds for a job when ANY value of
the attribute (of that origin, if given) satisfies it — ``ne`` too: some value differs, as in the
original JP, where every attribute may be multi-valued. A list of conditions is their AND.

``compile_conditions`` checks a list against the registry and returns ``CompiledCondition``s whose
operands are parsed and keyed; ``matches`` is the reference evaluation (the feed's matcher and
the query tests' oracle); the SQL translation of the same semantics is in
``jp_primary/db/repositories/query.py``.

Pure code: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from jp_primary.attributes.names import ALIASES, expand
from jp_primary.attributes.registry import TypeRegistry
from jp_primary.attributes.types import AttributeType

OPERATORS = ("eq", "ne", "lt", "gt", "within", "exists", "in", "prefix")
ORIGINS = ("SYSTEM", "USER", "FILE")
MAX_CONDITIONS = 64
MAX_IN_VALUES = 1000

_Fail = Callable[[str], Exception]
_ORDERING = frozenset({"lt", "gt", "within"})
_WITH_VALUE = frozenset({"eq", "ne", "lt", "gt", "within", "prefix"})


@dataclass(frozen=True)
class Condition:
    """One condition as it comes over the wire (``where`` of a query, ``conditions`` of a feed)."""

    attr: str
    op: str
    value: str | None = None
    value2: str | None = None
    values: tuple[str, ...] | None = None
    origin: str | None = None


class ConditionError(ValueError):
    """A condition that cannot be evaluated; ``index`` is its position in the list."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(f"condition {index}: {message}")
        self.index = index
        self.message = message


@dataclass(frozen=True)
class CompiledCondition:
    """A checked condition: qualified name, type, origin, parsed operands and their keys."""

    index: int
    attr: str  # qualified
    op: str
    type: AttributeType
    origin: str | None  # SYSTEM | USER | FILE
    value: str | None = None
    value2: str | None = None
    values: tuple[str, ...] = ()
    key: str | None = None  # index key of value
    key2: str | None = None  # index key of value2
    keys: tuple[str, ...] = ()  # index keys of values

    @property
    def exact_text(self) -> bool:
        """Compared as text, not through keys (strings, XML): keys may be truncated."""
        return self.type.textual or not self.type.ordered

    def holds(self, values: Iterable[tuple[str, str]]) -> bool:
        """True when any ``(value_text, origin)`` of this attribute satisfies the condition."""
        return any(
            self._satisfied_by(text)
            for text, origin in values
            if self.origin is None or origin == self.origin
        )

    def _satisfied_by(self, text: str) -> bool:
        op = self.op
        if op == "exists":
            return True
        if op == "prefix":
            return text.startswith(self.value or "")
        if op in ("eq", "ne", "in"):
            if self.exact_text:
                equal = text in self.values if op == "in" else text == self.value
            else:
                key = self.type.index_key(text)
                equal = key is not None and (key in self.keys if op == "in" else key == self.key)
            return equal if op != "ne" else not equal
        return self._ordered(text)

    def _ordered(self, text: str) -> bool:
        if self.exact_text:
            low, high, probe = self.value or "", self.value2 or "", text
        else:
            key = self.type.index_key(text)
            if key is None:
                return False
            low, high, probe = self.key or "", self.key2 or "", key
        if self.op == "lt":
            return probe < low
        if self.op == "gt":
            return probe > low
        return low <= probe <= high  # within, inclusive


def matches(
    compiled: Sequence[CompiledCondition],
    values_by_name: Mapping[str, Sequence[tuple[str, str]]],
) -> bool:
    """True when every condition holds; ``values_by_name`` maps qualified names to the job's
    ``(value_text, origin)`` pairs."""
    return all(c.holds(values_by_name.get(c.attr, ())) for c in compiled)


def compile_conditions(
    conditions: Sequence[Condition], registry: TypeRegistry
) -> list[CompiledCondition]:
    """Check and compile ``conditions``; ``ConditionError`` names the first bad one."""
    if len(conditions) > MAX_CONDITIONS:
        raise ConditionError(
            MAX_CONDITIONS,
            f"at most {MAX_CONDITIONS} conditions are allowed, got {len(conditions)}",
        )
    return [_compile(index, c, registry) for index, c in enumerate(conditions)]


def _compile(index: int, c: Condition, registry: TypeRegistry) -> CompiledCondition:
    def fail(message: str) -> ConditionError:
        return ConditionError(index, message)

    attr = _qualified(c.attr, fail)
    if c.op not in OPERATORS:
        raise fail(f"unknown operator {c.op!r}; use one of {', '.join(OPERATORS)}")
    origin = _origin(c.origin, fail)
    kind = registry.type_of(attr)
    _check_operands(c, kind, fail)
    compiled = CompiledCondition(index, attr, c.op, kind, origin)
    if c.op == "exists":
        return compiled
    if c.op == "in":
        values = tuple(c.values or ())
        keys = tuple(_key(kind, v, f"values[{i}]", attr, fail) for i, v in enumerate(values))
        return replace(compiled, values=values, keys=keys)
    value = c.value or ""
    key = value if c.op == "prefix" else _key(kind, value, "value", attr, fail)
    if c.op != "within":
        return replace(compiled, value=value, key=key)
    value2 = c.value2 or ""
    key2 = _key(kind, value2, "value2", attr, fail)
    low, high = (value, value2) if compiled.exact_text else (key, key2)
    if low > high:
        raise fail(f"within needs value <= value2, got {value!r} > {value2!r}")
    return replace(compiled, value=value, key=key, value2=value2, key2=key2)


def qualified_name(attr: str) -> str:
    """``attr`` with its alias expanded; ``ValueError`` saying why when it names no attribute
    (no namespace, an unknown alias). For ``select`` lists and feed attribute lists."""
    return _qualified(attr, ValueError)


def _qualified(attr: str, fail: _Fail) -> str:
    if not attr:
        raise fail("attr is empty; name an attribute, e.g. lb:status or tag:campaign")
    prefix, sep, _local = attr.partition(":")
    if not sep:
        raise fail(
            f"attribute {attr!r} has no namespace; write it with an alias "
            f"({', '.join(sorted(ALIASES))}), e.g. tag:{attr} for a user tag"
        )
    qualified = expand(attr)
    if qualified == attr and "://" not in attr and not attr.startswith("urn:"):
        raise fail(
            f"unknown alias {prefix!r} in {attr!r}; known aliases: {', '.join(sorted(ALIASES))} "
            "(or write the full namespace URI)"
        )
    return qualified


def _origin(origin: str | None, fail: _Fail) -> str | None:
    if origin is None:
        return None
    upper = origin.upper()
    if upper not in ORIGINS:
        raise fail(f"unknown origin {origin!r}; use one of {', '.join(ORIGINS)}")
    return upper


def _check_operands(c: Condition, kind: AttributeType, fail: _Fail) -> None:
    op = c.op
    if op in _WITH_VALUE and c.value is None:
        raise fail(f"{op} needs a value")
    if op not in _WITH_VALUE and c.value is not None:
        raise fail(f"{op} takes no value" + ("; list the values in values" if op == "in" else ""))
    if op == "within" and c.value2 is None:
        raise fail("within needs value2 (the upper bound, inclusive)")
    if op != "within" and c.value2 is not None:
        raise fail(f"value2 is only for within, not {op}")
    if op == "in":
        if not c.values:
            raise fail("in needs a non-empty list of values")
        if len(c.values) > MAX_IN_VALUES:
            raise fail(f"in takes at most {MAX_IN_VALUES} values, got {len(c.values)}")
    elif c.values is not None:
        raise fail(f"values is only for in, not {op}")
    if op == "prefix" and not kind.textual:
        raise fail(f"prefix works on strings only; {c.attr} is of type {kind.name}")
    if op in _ORDERING and not kind.ordered:
        raise fail(f"{op} needs an ordered type; {c.attr} is of type {kind.name} (eq, ne, in)")


def _key(kind: AttributeType, text: str, field: str, attr: str, fail: _Fail) -> str:
    try:
        return kind.key_of(kind.parse(text))
    except ValueError as exc:
        raise fail(f"{field} does not fit {attr} (type {kind.name}): {exc}") from None
