"""File classes and the plugins that derive attributes from them.

Plugins come from the ``jp_primary.plugins`` entry-point group and are imported on first use,
each on its own: a plugin that fails to import, to construct, or to declare itself properly is
logged and skipped, so one broken third-party package never stops the service. The built-in
classes (``lb``, ``isb``, ``osb``, ``jdl``, ``condor-log``) and their original URNs are accepted
whatever happens to their plugins; a file of a class without a working plugin is stored and simply
has no derived values (they can be recomputed once the plugin is fixed).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from jp_primary.attributes.registry import TypeRegistry, default_registry
from jp_primary.errors import InvalidInput
from jp_primary.plugins.base import FilePlugin

GROUP = "jp_primary.plugins"
URN_PREFIX = "urn:org.glite.jp.primary:"

# Classes always accepted, with their aliases (the original URNs and the original class names).
BUILTIN_CLASSES: dict[str, tuple[str, ...]] = {
    "lb": (f"{URN_PREFIX}lb",),
    "isb": (f"{URN_PREFIX}isb",),
    "osb": (f"{URN_PREFIX}osb",),
    "jdl": (f"{URN_PREFIX}classad", "classad"),
    "condor-log": (),
}

# Class names end up in storage paths and URLs: keep them filesystem- and URL-safe.
_CLASS_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadError:
    """Why one entry point contributed nothing (kept for diagnostics)."""

    entry_point: str
    message: str


class PluginRegistry:
    """Canonical file classes, their aliases, and the plugin serving each class."""

    def __init__(self, sources: Iterable[EntryPoint] | None = None) -> None:
        """``sources`` defaults to the installed ``jp_primary.plugins`` entry points."""
        self._sources = None if sources is None else list(sources)
        self._lock = threading.Lock()
        self._loaded = False
        self._plugins: dict[str, FilePlugin] = {}  # class -> plugin
        self._aliases: dict[str, str] = {}  # lower-cased class or alias -> class
        self._errors: list[LoadError] = []

    @classmethod
    def from_plugins(cls, plugins: Iterable[FilePlugin]) -> PluginRegistry:
        """A registry of already constructed plugins (plus the always-accepted classes)."""
        registry = cls(sources=[])
        with registry._lock:
            registry._register_builtin_classes()
            for plugin in plugins:
                registry._register(plugin, f"{type(plugin).__module__}:{type(plugin).__name__}")
            registry._loaded = True
        return registry

    def load(self) -> None:
        """Import every plugin now (idempotent); call at start-up to log problems early."""
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            self._register_builtin_classes()
            sources = entry_points(group=GROUP) if self._sources is None else self._sources
            for entry_point in sorted(sources, key=_builtins_first):
                plugin = self._instantiate(entry_point)
                if plugin is not None:
                    self._register(plugin, f"{entry_point.name} = {entry_point.value}")
            self._loaded = True

    @property
    def load_errors(self) -> list[LoadError]:
        self.load()
        return list(self._errors)

    def classes(self) -> list[str]:
        """Every accepted canonical class, sorted."""
        self.load()
        return sorted(set(self._aliases.values()))

    def resolve_class(self, name_or_urn: str) -> str:
        """The canonical class for a class name or alias; ``InvalidInput`` if unknown."""
        self.load()
        canonical = self._aliases.get(name_or_urn.strip().lower())
        if canonical is None:
            known = ", ".join(self.classes())
            raise InvalidInput(f"unknown file class {name_or_urn!r}; known classes: {known}")
        return canonical

    def plugin_for(self, file_class: str) -> FilePlugin | None:
        """The plugin deriving values from ``file_class`` (a class or alias), if one works."""
        self.load()
        canonical = self._aliases.get(file_class.strip().lower())
        return None if canonical is None else self._plugins.get(canonical)

    def aliases_of(self, file_class: str) -> list[str]:
        """The aliases accepted for a canonical class (URNs and old names), sorted."""
        self.load()
        return sorted(
            alias for alias, target in self._aliases.items() if target == file_class != alias
        )

    def attribute_types(self) -> TypeRegistry:
        """The attribute type registry: the system attributes and each loaded plugin's
        ``attribute_types``; a plugin whose declarations are unusable (an unknown type, a clash
        with another plugin) is logged and its declarations left out, as a broken plugin is."""
        self.load()
        unique = {id(p): p for p in self._plugins.values()}.values()
        return default_registry(unique, on_error=self._declaration_error)

    def _declaration_error(self, plugin: str, message: str) -> None:
        self._fail(plugin, f"attribute type declarations left out: {message}")

    def namespaces(self) -> dict[str, list[str]]:
        """Each attribute namespace produced by a loaded plugin -> the classes producing it."""
        self.load()
        produced: dict[str, set[str]] = {}
        for file_class, plugin in self._plugins.items():
            for namespace in plugin.namespaces:
                produced.setdefault(namespace, set()).add(file_class)
        return {namespace: sorted(produced[namespace]) for namespace in sorted(produced)}

    def classes_for_namespace(self, namespace: str) -> list[str]:
        """The classes whose plugin produces values in ``namespace`` (empty if none)."""
        return self.namespaces().get(namespace, [])

    # -- loading ----------------------------------------------------------------------------

    def _register_builtin_classes(self) -> None:
        for file_class, aliases in BUILTIN_CLASSES.items():
            for name in (file_class, *aliases):
                self._aliases[name.lower()] = file_class

    def _instantiate(self, entry_point: EntryPoint) -> FilePlugin | None:
        label = f"{entry_point.name} = {entry_point.value}"
        try:
            loaded = entry_point.load()
            plugin = loaded() if isinstance(loaded, type) else loaded
        except Exception as exc:  # a third-party import may raise anything; never crash
            self._fail(label, f"cannot be loaded: {type(exc).__name__}: {exc}")
            return None
        if not isinstance(plugin, FilePlugin):
            self._fail(label, "is not a file plugin (needs classes, aliases, namespaces, extract)")
            return None
        return plugin

    def _register(self, plugin: FilePlugin, label: str) -> None:
        problem = _declaration_problem(plugin)
        if problem is not None:
            self._fail(label, problem)
            return
        for file_class in plugin.classes:
            taken = self._taken_by(file_class)
            if taken is not None:
                self._fail(label, f"class {file_class!r} is already {taken}; skipped")
                continue
            self._plugins[file_class] = plugin
            self._aliases.setdefault(file_class, file_class)
        for alias, target in plugin.aliases.items():
            if self._plugins.get(target) is plugin:
                self._aliases.setdefault(alias.lower(), target)
        log.info("file plugin %s serves %s", label, ", ".join(plugin.classes))

    def _taken_by(self, file_class: str) -> str | None:
        if file_class in self._plugins:
            return f"served by {type(self._plugins[file_class]).__name__}"
        target = self._aliases.get(file_class, file_class)
        return None if target == file_class else f"an alias of {target!r}"

    def _fail(self, label: str, message: str) -> None:
        log.error("file plugin %s %s", label, message)
        self._errors.append(LoadError(entry_point=label, message=message))


def _declaration_problem(plugin: FilePlugin) -> str | None:
    """Why the plugin's declarations cannot be used, or ``None`` if they can."""
    try:
        classes = tuple(plugin.classes)
        aliases = dict(plugin.aliases)
        namespaces = tuple(plugin.namespaces)
    except Exception as exc:  # malformed ClassVars of a third-party plugin
        return f"has malformed declarations: {exc}"
    if not classes:
        return "declares no file classes"
    bad = [c for c in classes if not isinstance(c, str) or not _CLASS_NAME.fullmatch(c)]
    if bad:
        return f"declares invalid class names {bad!r} (lower-case letters, digits, . _ - only)"
    if any(target not in classes for target in aliases.values()):
        return "declares an alias for a class it does not serve"
    if not all(isinstance(namespace, str) for namespace in namespaces):
        return "declares a namespace that is not a string"
    return None


def _builtins_first(entry_point: EntryPoint) -> tuple[bool, str]:
    """Our own plugins claim their classes before any third party can."""
    return (not entry_point.value.startswith("jp_primary."), entry_point.name)
