"""What the index keeps: the configured attributes, their types and their index keys.

Types come from the primary's attribute library (``jp_primary.attributes``), so an index key here
orders exactly as the primary's query and feed conditions compare.
"""

from __future__ import annotations

from jp_primary.attributes.names import SYSTEM_JOBID, SYSTEM_OWNER
from jp_primary.index.config import AttributeSection, IndexConfig
from jp_primary.index.typelib import TypeLookup, build_types

# Keys longer than this are cut (as the original's 255-character index strings were): the cut is
# order-preserving but lossy, so SQL on keys only narrows candidates; the library decides.
KEY_CHARS = 512

# Always known: they come with every job record, whatever the configuration says.
_SYSTEM = {
    SYSTEM_OWNER: AttributeSection(name=SYSTEM_OWNER, multivalued=False, indexed=True),
    SYSTEM_JOBID: AttributeSection(name=SYSTEM_JOBID, multivalued=False, indexed=True),
}


class Catalog:
    def __init__(self, config: IndexConfig, types: TypeLookup | None = None) -> None:
        self._exact = {a.name: a for a in config.attributes if not a.name.endswith(":*")}
        self._patterns = [
            (a.name[:-1], a) for a in config.attributes if a.name.endswith(":*")
        ]  # "ns:" prefixes
        self.types = types or build_types()

    def lookup(self, name: str) -> AttributeSection | None:
        """The configuration of ``name`` (qualified): exact, else its namespace pattern."""
        found = self._exact.get(name) or _SYSTEM.get(name)
        if found is not None:
            return found
        namespace = name.rpartition(":")[0] + ":"
        for prefix, section in self._patterns:
            if namespace == prefix:
                return section
        return None

    def indexed(self, name: str) -> bool:
        section = self.lookup(name)
        return section is not None and section.indexed

    def key(self, name: str, text: str) -> str | None:
        key = self.types.index_key(name, text)
        return None if key is None else key[:KEY_CHARS]
