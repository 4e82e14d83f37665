"""The type registry: system declarations, plugin declarations, patterns, conflicts."""

from __future__ import annotations

from typing import ClassVar

import pytest

from jp_primary.attributes.names import CONDOR_LOG, LB_ATTRIBUTES, SYSTEM_REGTIME
from jp_primary.attributes.registry import TypeRegistry, default_registry
from jp_primary.attributes.types import (
    INTEGER,
    LB_DONE_CODE,
    LB_STATE,
    STRING,
    TIMESTAMP,
    XML,
)
from jp_primary.plugins.condor.plugin import CondorLogPlugin
from jp_primary.plugins.jdl.plugin import JDLPlugin
from jp_primary.plugins.lb.plugin import LBPlugin
from jp_primary.plugins.sandbox import SandboxPlugin

BUILTIN = [LBPlugin(), JDLPlugin(), SandboxPlugin(), CondorLogPlugin()]


def test_system_attributes_and_unknown_names() -> None:
    registry = default_registry()
    assert registry.type_of("system:regtime") is TIMESTAMP
    assert registry.type_of(SYSTEM_REGTIME) is TIMESTAMP
    assert registry.type_of("jp:owner") is STRING
    assert registry.type_of("system:jobId") is STRING
    assert registry.type_of("tag:campaign") is STRING
    assert registry.type_of("http://example.org/ns:anything") is STRING


def test_builtin_plugins_declare_what_they_derive() -> None:
    registry = default_registry(BUILTIN)
    assert registry.type_of("lb:status") is LB_STATE
    assert registry.type_of(f"{LB_ATTRIBUTES}:doneCode") is LB_DONE_CODE
    assert registry.type_of("lb:exitCode") is INTEGER
    assert registry.type_of("lb:stateEnterTime") is TIMESTAMP
    assert registry.type_of("lb:stateEnterTimes") is XML
    assert registry.type_of(f"{CONDOR_LOG}:returnValue") is INTEGER
    assert registry.type_of("condor:submitTime") is TIMESTAMP
    assert registry.type_of("isb:size:input/data.txt") is INTEGER
    assert registry.type_of("isb:filename") is STRING
    assert registry.type_of("jdl:RetryCount") is INTEGER


def test_every_builtin_declaration_names_a_known_type_in_the_plugins_namespaces() -> None:
    for plugin in BUILTIN:
        registry = TypeRegistry()
        registry.declare_all(plugin.attribute_types, plugin.name)
        for declaration in registry.declarations():
            assert declaration.pattern.startswith(plugin.namespaces), declaration


def test_patterns_exact_names_win_then_longest_pattern() -> None:
    registry = TypeRegistry()
    registry.declare("http://x/ns:*", "integer", "p1")
    registry.declare("http://x/ns:time*", "timestamp", "p1")
    registry.declare("http://x/ns:timeout", "string", "p1")
    assert registry.type_of("http://x/ns:count") is INTEGER
    assert registry.type_of("http://x/ns:timeStarted") is TIMESTAMP
    assert registry.type_of("http://x/ns:timeout") is STRING
    assert registry.type_of("http://x/other:count") is STRING


def test_conflicting_declarations_are_refused_and_unknown_types_named() -> None:
    registry = TypeRegistry()
    registry.declare("lb:exitCode", "integer", "lb")
    registry.declare("lb:exitCode", "integer", "again")  # the same type twice is fine
    with pytest.raises(ValueError, match="declared integer by lb and string by other"):
        registry.declare("lb:exitCode", "string", "other")
    with pytest.raises(KeyError, match="unknown attribute type 'number'"):
        registry.declare("lb:x", "number", "lb")


def test_plugins_without_declarations_are_fine() -> None:
    class Bare:
        name: ClassVar[str] = "bare"

    assert default_registry([Bare()]).type_of("lb:status") is STRING
