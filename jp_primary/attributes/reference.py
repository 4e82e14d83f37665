"""The reference tables of docs/attributes.md, rendered from the library itself (aliases, types,
every declaration of a registry), so the document cannot drift from the code: a test compares
the document with ``markdown(registry)``; ``scripts/attributes_doc.py`` rewrites it.

Pure code: returns text.
"""

from __future__ import annotations

from jp_primary.attributes.names import ALIASES
from jp_primary.attributes.registry import TypeRegistry
from jp_primary.attributes.types import TYPES, EnumType

BEGIN = "<!-- BEGIN GENERATED: scripts/attributes_doc.py -->"
END = "<!-- END GENERATED -->"

_TYPE_NOTES = {
    "string": "any text; compared by code point; `prefix` works on it",
    "integer": "decimal, optional sign, up to 120 digits (`007` = `7`, `10` > `9`)",
    "float": "decimal or exponent notation (`1e3`); no NaN or infinity",
    "timestamp": "ISO 8601 / RFC 3339; no zone means UTC; compared as instants",
    "boolean": "`true`/`false`, `1`/`0`, `yes`/`no`, any case; false < true",
    "xml": "a well-formed XML fragment; eq, ne, in, exists only (no order)",
}


def markdown(registry: TypeRegistry) -> str:
    """The generated part of docs/attributes.md, between ``BEGIN`` and ``END``."""
    lines = [BEGIN, "", "### Aliases", "", "| alias | namespace |", "|---|---|"]
    lines += [f"| `{alias}:` | `{ALIASES[alias]}` |" for alias in sorted(ALIASES)]
    lines += ["", "### Types", "", "| type | accepts |", "|---|---|"]
    for name, kind in TYPES.items():
        note = _TYPE_NOTES.get(name)
        if isinstance(kind, EnumType):
            note = "one of " + ", ".join(f"`{label}`" for label in kind.labels)
            note += " (any case), or its position `0`..; ordered as listed"
        lines.append(f"| `{name}` | {note} |")
    lines += [
        "",
        "### Declared attributes",
        "",
        "| attribute | type | declared by |",
        "|---|---|---|",
    ]
    lines += [f"| `{d.pattern}` | `{d.type.name}` | {d.source} |" for d in registry.declarations()]
    lines += ["", "Every other attribute is a `string`.", "", END]
    return "\n".join(lines) + "\n"


def replace_generated(document: str, generated: str) -> str:
    """``document`` with its generated part replaced by ``generated``."""
    head, found, rest = document.partition(BEGIN)
    _, ended, tail = rest.partition(END)
    if not (found and ended):
        raise ValueError(f"the document has no {BEGIN} ... {END} section")
    return head + generated.rstrip("\n") + tail
