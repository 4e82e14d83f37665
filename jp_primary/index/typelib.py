"""The one place the index meets the attribute library (``jp_primary.attributes``).

The index keeps values under the same types the primary uses -- the system declarations plus
what the installed plugins declare -- so its keys order, and its conditions hold, exactly as the
primary's do. Nothing here re-implements a comparison.
"""

from __future__ import annotations

from collections.abc import Sequence

from jp_primary.attributes.conditions import CompiledCondition, Condition, compile_conditions
from jp_primary.attributes.registry import TypeRegistry, default_registry
from jp_primary.plugins.registry import PluginRegistry


class TypeLookup:
    def __init__(self, registry: TypeRegistry) -> None:
        self.registry = registry

    def index_key(self, name: str, text: str) -> str | None:
        return self.registry.type_of(name).index_key(text)

    def compile(self, conditions: Sequence[Condition]) -> list[CompiledCondition]:
        """``ConditionError`` (a ``ValueError``) names the first bad condition."""
        return compile_conditions(conditions, self.registry)


def build_types() -> TypeLookup:
    """The registry the primary builds: system attributes plus the installed plugins' types."""
    plugins = PluginRegistry()
    plugins.load()
    found = (plugins.plugin_for(c) for c in plugins.classes())
    unique = {id(p): p for p in found if p is not None}
    return TypeLookup(default_registry(unique.values()))
