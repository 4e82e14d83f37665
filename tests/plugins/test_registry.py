from __future__ import annotations

import logging
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import ClassVar

import pytest

from jp_primary.errors import InvalidInput
from jp_primary.plugins.base import ExtractContext, Extraction, FilePlugin
from jp_primary.plugins.condor.plugin import CondorLogPlugin
from jp_primary.plugins.jdl.plugin import JDLPlugin
from jp_primary.plugins.registry import GROUP, PluginRegistry
from jp_primary.plugins.sandbox import SandboxPlugin

BUILTIN = ["condor-log", "isb", "jdl", "lb", "osb"]


class WeatherPlugin:
    """A well-behaved third-party plugin."""

    name: ClassVar[str] = "weather"
    classes: ClassVar[tuple[str, ...]] = ("weather",)
    aliases: ClassVar[dict[str, str]] = {"urn:example.org:weather": "weather"}
    namespaces: ClassVar[tuple[str, ...]] = ("http://example.org/weather",)

    def extract(self, path: Path, context: ExtractContext) -> Extraction:
        return Extraction()


class ExplodingPlugin(WeatherPlugin):
    def __init__(self) -> None:
        raise RuntimeError("boom in constructor")


class BadNamesPlugin(WeatherPlugin):
    classes: ClassVar[tuple[str, ...]] = ("Bad/Name",)
    aliases: ClassVar[dict[str, str]] = {}


class ThiefPlugin(WeatherPlugin):
    """Claims a built-in class that the real plugin already serves."""

    classes: ClassVar[tuple[str, ...]] = ("jdl",)
    aliases: ClassVar[dict[str, str]] = {}


NOT_A_PLUGIN = object()


def ep(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=GROUP)


def here(attribute: str) -> str:
    return f"{__name__}:{attribute}"


def test_installed_entry_points_provide_the_builtins() -> None:
    names = {entry.name for entry in entry_points(group=GROUP)}
    assert {"jdl", "sandbox", "condor"} <= names
    registry = PluginRegistry()
    assert registry.classes() == BUILTIN
    assert isinstance(registry.plugin_for("jdl"), JDLPlugin)
    assert isinstance(registry.plugin_for("isb"), SandboxPlugin)
    assert registry.plugin_for("osb") is registry.plugin_for("isb")
    assert isinstance(registry.plugin_for("condor-log"), CondorLogPlugin)
    assert all(isinstance(registry.plugin_for(c), FilePlugin | None) for c in BUILTIN)


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("urn:org.glite.jp.primary:lb", "lb"),
        ("urn:org.glite.jp.primary:isb", "isb"),
        ("urn:org.glite.jp.primary:osb", "osb"),
        ("urn:org.glite.jp.primary:classad", "jdl"),
        ("URN:ORG.GLITE.JP.PRIMARY:CLASSAD", "jdl"),
        ("classad", "jdl"),
        ("jdl", "jdl"),
        (" JDL ", "jdl"),
        ("condor-log", "condor-log"),
    ],
)
def test_resolve_class_accepts_names_and_original_urns(given: str, canonical: str) -> None:
    assert PluginRegistry().resolve_class(given) == canonical


def test_unknown_class_is_invalid_input_listing_known_classes() -> None:
    with pytest.raises(InvalidInput) as raised:
        PluginRegistry().resolve_class("urn:org.glite.jp.primary:tags")
    assert raised.value.status_code == 422
    assert "unknown file class 'urn:org.glite.jp.primary:tags'" in raised.value.detail
    assert "known classes: condor-log, isb, jdl, lb, osb" in raised.value.detail


def test_plugin_for_unknown_class_is_none() -> None:
    assert PluginRegistry().plugin_for("nonsense") is None


def test_builtin_classes_survive_their_plugins_failing(caplog: pytest.LogCaptureFixture) -> None:
    registry = PluginRegistry([ep("lb", "jp_primary_no_such_module.plugin:LBPlugin")])
    with caplog.at_level(logging.ERROR, logger="jp_primary.plugins.registry"):
        assert registry.classes() == BUILTIN
    assert registry.resolve_class("urn:org.glite.jp.primary:lb") == "lb"
    assert registry.plugin_for("lb") is None
    assert "jp_primary_no_such_module" in caplog.text
    assert "ModuleNotFoundError" in caplog.text
    [error] = registry.load_errors
    assert error.entry_point == "lb = jp_primary_no_such_module.plugin:LBPlugin"


def test_broken_third_party_plugins_are_skipped_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sources = [
        ep("jdl", "jp_primary.plugins.jdl.plugin:JDLPlugin"),
        ep("missing", "nowhere_to_be_found:Plugin"),
        ep("missing-attr", here("NoSuchClass")),
        ep("exploding", here("ExplodingPlugin")),
        ep("not-a-plugin", here("NOT_A_PLUGIN")),
        ep("bad-names", here("BadNamesPlugin")),
        ep("thief", here("ThiefPlugin")),
        ep("weather", here("WeatherPlugin")),
    ]
    registry = PluginRegistry(sources)
    with caplog.at_level(logging.ERROR, logger="jp_primary.plugins.registry"):
        classes = registry.classes()
    assert classes == sorted([*BUILTIN, "weather"])
    assert isinstance(registry.plugin_for("jdl"), JDLPlugin)  # not stolen
    assert isinstance(registry.plugin_for("weather"), WeatherPlugin)
    failed = {error.entry_point.split(" = ")[0]: error.message for error in registry.load_errors}
    assert set(failed) == {
        "missing",
        "missing-attr",
        "exploding",
        "not-a-plugin",
        "bad-names",
        "thief",
    }
    assert "boom in constructor" in failed["exploding"]
    assert "not a file plugin" in failed["not-a-plugin"]
    assert "invalid class names" in failed["bad-names"]
    assert "already served by JDLPlugin" in failed["thief"]
    for name in failed:
        assert f"file plugin {name} = " in caplog.text


def test_third_party_aliases_and_namespaces() -> None:
    registry = PluginRegistry([ep("weather", here("WeatherPlugin"))])
    assert registry.resolve_class("urn:example.org:weather") == "weather"
    assert registry.aliases_of("weather") == ["urn:example.org:weather"]
    assert registry.namespaces() == {"http://example.org/weather": ["weather"]}
    assert registry.classes_for_namespace("http://example.org/weather") == ["weather"]
    assert registry.classes_for_namespace("http://jdl") == []


def test_builtin_namespaces_map_to_their_classes() -> None:
    namespaces = PluginRegistry().namespaces()
    assert namespaces["http://jdl"] == ["jdl"]
    assert namespaces["http://egee.cesnet.cz/en/Schema/JP/ISB"] == ["isb", "osb"]
    assert namespaces["http://jp-primary/Schema/Condor"] == ["condor-log"]


def test_plugins_are_imported_only_when_first_needed(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="jp_primary.plugins.registry"):
        registry = PluginRegistry([ep("missing", "nowhere_to_be_found:Plugin")])
        assert caplog.text == ""
        registry.load()
        registry.load()  # idempotent: the failure is reported once
    assert [r.levelname for r in caplog.records] == ["ERROR"]
    assert "nowhere_to_be_found" in caplog.text


def test_from_plugins_builds_a_registry_without_entry_points() -> None:
    registry = PluginRegistry.from_plugins([WeatherPlugin(), JDLPlugin()])
    assert registry.classes() == sorted([*BUILTIN, "weather"])
    assert registry.resolve_class("urn:org.glite.jp.primary:classad") == "jdl"
    assert registry.plugin_for("isb") is None
    assert registry.load_errors == []


def test_aliases_of_builtin_classes() -> None:
    registry = PluginRegistry()
    assert registry.aliases_of("jdl") == ["classad", "urn:org.glite.jp.primary:classad"]
    assert registry.aliases_of("lb") == ["urn:org.glite.jp.primary:lb"]
    assert registry.aliases_of("condor-log") == []
