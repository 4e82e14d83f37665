"""docs/attributes.md shows what the registry holds (issue 9: one source of truth)."""

from __future__ import annotations

import pytest

from jp_primary.attributes.reference import BEGIN, END, markdown, replace_generated
from jp_primary.attributes.registry import default_registry
from jp_primary.plugins.registry import PluginRegistry
from tests.helpers import REPO


def test_docs_attributes_md_is_generated_from_the_registry() -> None:
    document = (REPO / "docs" / "attributes.md").read_text(encoding="utf-8")
    generated = markdown(PluginRegistry().attribute_types())
    section = BEGIN + document.partition(BEGIN)[2].partition(END)[0] + END + "\n"
    assert section == generated, (
        "docs/attributes.md is out of date: run .venv/bin/python scripts/attributes_doc.py"
    )


def test_the_tables_name_every_type_alias_and_declaration() -> None:
    text = markdown(PluginRegistry().attribute_types())
    for needle in ("`lb_state`", "`Purged`", "`lb:`", "`isb:size:*`", "condor:returnValue"):
        assert (
            needle.replace("isb:", "http://egee.cesnet.cz/en/Schema/JP/ISB:").replace(
                "condor:", "http://jp-primary/Schema/Condor:"
            )
            in text
        ), needle


def test_replacing_needs_the_markers() -> None:
    with pytest.raises(ValueError, match="no <!-- BEGIN"):
        replace_generated("no markers", markdown(default_registry()))
    assert replace_generated(f"a\n{BEGIN}\nold\n{END}\nb", f"{BEGIN}\nnew\n{END}\n") == (
        f"a\n{BEGIN}\nnew\n{END}\nb"
    )
