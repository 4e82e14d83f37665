"""Which type each attribute has: exact names and namespace patterns, declared by the service
(system attributes) and by the plugins (what they derive). Unknown attributes are strings.

A declaration maps a name or a pattern to a type name. Names may be written with an alias
(``lb:doneCode``); a pattern ends with ``*`` and matches every name that starts with what comes
before it (``isb:size:*``). An exact name wins over patterns; among patterns the longest wins.

Pure code: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from jp_primary.attributes.names import (
    SYSTEM_JOBID,
    SYSTEM_OWNER,
    SYSTEM_REGTIME,
    expand,
    pattern_prefix,
)
from jp_primary.attributes.types import STRING, AttributeType, type_named

# The attributes the service itself records (origin SYSTEM).
SYSTEM_TYPES: dict[str, str] = {
    SYSTEM_OWNER: "string",
    SYSTEM_REGTIME: "timestamp",
    SYSTEM_JOBID: "string",
}


@dataclass(frozen=True)
class Declaration:
    """One line of the registry: who declared which name or pattern to be of which type."""

    pattern: str  # qualified; ends with "*" for a prefix pattern
    type: AttributeType
    source: str  # "system" or the plugin's name

    @property
    def is_pattern(self) -> bool:
        return pattern_prefix(self.pattern) is not None


class TypeRegistry:
    """Attribute name -> type, from exact declarations and ``prefix*`` patterns."""

    def __init__(self) -> None:
        self._exact: dict[str, Declaration] = {}
        self._patterns: list[Declaration] = []  # longest prefix first
        self._cache: dict[str, AttributeType] = {}

    def declare(self, name_or_pattern: str, type_name: str, source: str = "system") -> None:
        """Declare a type; ``KeyError`` for an unknown type, ``ValueError`` for a conflict."""
        pattern = expand(name_or_pattern)
        declaration = Declaration(pattern, type_named(type_name), source)
        table = {d.pattern: d for d in self._patterns} if declaration.is_pattern else self._exact
        earlier = table.get(pattern)
        if earlier is not None and earlier.type is declaration.type:
            return  # the same declaration twice (two plugins agreeing): the first one is kept
        if earlier is not None:
            raise ValueError(
                f"{pattern} is declared {earlier.type.name} by {earlier.source} "
                f"and {declaration.type.name} by {source}"
            )
        if declaration.is_pattern:
            self._patterns = sorted([*table.values(), declaration], key=lambda d: -len(d.pattern))
        else:
            self._exact[pattern] = declaration
        self._cache.clear()

    def declare_all(self, declarations: Mapping[str, str], source: str) -> None:
        for name, type_name in declarations.items():
            self.declare(name, type_name, source)

    def type_of(self, name: str) -> AttributeType:
        """The type of attribute ``name`` (alias or qualified); STRING when nothing declares it."""
        found = self._cache.get(name)
        if found is None:
            found = self._resolve(expand(name))
            if len(self._cache) < 65_536:  # bounded: names come from requests too
                self._cache[name] = found
        return found

    def _resolve(self, qualified: str) -> AttributeType:
        exact = self._exact.get(qualified)
        if exact is not None:
            return exact.type
        for declaration in self._patterns:
            if qualified.startswith(declaration.pattern[:-1]):
                return declaration.type
        return STRING

    def copy(self) -> TypeRegistry:
        twin = TypeRegistry()
        twin._exact = dict(self._exact)
        twin._patterns = list(self._patterns)
        return twin

    def declarations(self) -> list[Declaration]:
        """Every declaration, exact names and patterns, sorted by name (for docs/attributes.md)."""
        return sorted([*self._exact.values(), *self._patterns], key=lambda d: d.pattern)


def default_registry(
    plugins: Iterable[object] = (),
    on_error: Callable[[str, str], None] | None = None,
) -> TypeRegistry:
    """The registry of the system attributes plus each plugin's ``attribute_types``.

    A plugin's unusable declarations (an unknown type name, a clash) raise, or, with
    ``on_error(plugin name, message)``, are reported and that plugin's declarations skipped."""
    registry = TypeRegistry()
    registry.declare_all(SYSTEM_TYPES, "system")
    for plugin in plugins:
        declared: Mapping[str, str] = getattr(plugin, "attribute_types", None) or {}
        source = str(getattr(plugin, "name", type(plugin).__name__))
        if on_error is None:
            registry.declare_all(declared, source)
            continue
        trial = registry.copy()
        try:
            trial.declare_all(declared, source)
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            on_error(source, str(exc))
        else:
            registry = trial
    return registry
