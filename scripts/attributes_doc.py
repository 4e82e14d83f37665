"""Rewrite the generated tables of docs/attributes.md from the attribute library and the
installed plugins' declarations: ``.venv/bin/python scripts/attributes_doc.py``."""

from __future__ import annotations

from pathlib import Path

from jp_primary.attributes.reference import markdown, replace_generated
from jp_primary.plugins.registry import PluginRegistry

DOC = Path(__file__).resolve().parent.parent / "docs" / "attributes.md"

if __name__ == "__main__":
    generated = markdown(PluginRegistry().attribute_types())
    DOC.write_text(replace_generated(DOC.read_text(encoding="utf-8"), generated), encoding="utf-8")
    print(f"rewrote the generated tables of {DOC}")
