"""Attribute namespaces of the original JP and the short aliases accepted on input.

A name is ``<namespace>:<local>``, e.g. ``http://egee.cesnet.cz/en/Schema/LB/Attributes:status``;
``lb:status`` is the same name written with an alias.
"""

from __future__ import annotations

from collections.abc import Iterable

JP_SYSTEM = "http://egee.cesnet.cz/en/Schema/JP/System"
JP_WORKFLOW = "http://egee.cesnet.cz/en/Schema/JP/Workflow"
JP_ISB = "http://egee.cesnet.cz/en/Schema/JP/ISB"
JP_OSB = "http://egee.cesnet.cz/en/Schema/JP/OSB"
LB_ATTRIBUTES = "http://egee.cesnet.cz/en/Schema/LB/Attributes"
LB_JDL = "http://egee.cesnet.cz/en/Schema/LB/Attributes:JDL"
LB_TAG = "http://egee.cesnet.cz/en/WSDL/jp-lbtag"
JDL_FILE = "http://jdl"
# Attributes that jp_primary adds beyond the original schema (documented in docs/attributes.md).
JP_PRIMARY = "http://jp-primary/Schema/Attributes"
# Derived from HTCondor user logs by the condor-log plugin (documented in docs/plugins.md).
CONDOR_LOG = "http://jp-primary/Schema/Condor"

SYSTEM_OWNER = f"{JP_SYSTEM}:owner"
SYSTEM_REGTIME = f"{JP_SYSTEM}:regtime"
SYSTEM_JOBID = f"{JP_SYSTEM}:jobId"

# Short prefixes accepted on input ("lb:status" -> LB_ATTRIBUTES + ":status").
ALIASES: dict[str, str] = {
    "jp": JP_SYSTEM,
    "system": JP_SYSTEM,
    "workflow": JP_WORKFLOW,
    "isb": JP_ISB,
    "osb": JP_OSB,
    "lb": LB_ATTRIBUTES,
    "lbjdl": LB_JDL,
    "jdl": JDL_FILE,
    "lbtag": LB_TAG,
    "tag": LB_TAG,
    "jpp": JP_PRIMARY,
    "condor": CONDOR_LOG,
}


# Namespaces whose values only the service and its plugins write: a user tag there could pass for
# a system or derived value (e.g. ``jp:owner``). Plugins' own namespaces are added at run time
# (``PluginRegistry.namespaces``); jp-lbtag is where unqualified user tags go.
RESERVED_NAMESPACES: tuple[str, ...] = (
    JP_SYSTEM,
    JP_WORKFLOW,
    JP_ISB,
    JP_OSB,
    LB_ATTRIBUTES,
    JDL_FILE,
    JP_PRIMARY,
    CONDOR_LOG,
)
USER_NAMESPACES: tuple[str, ...] = (LB_TAG,)


def expand(name: str) -> str:
    """Return the fully qualified form of ``name`` (aliases expanded; others unchanged)."""
    prefix, sep, local = name.partition(":")
    if sep and prefix.lower() in ALIASES and not local.startswith("//"):
        return f"{ALIASES[prefix.lower()]}:{local}"
    return name


def pattern_prefix(qualified: str) -> str | None:
    """The prefix a namespace pattern selects (``<prefix>*``, as the type registry writes
    patterns), or None when ``qualified`` is a plain name."""
    return qualified[:-1] if qualified.endswith("*") else None


def tag_attribute(tag_name: str) -> str:
    """The attribute a user tag is recorded under: its own qualified name, or jp-lbtag."""
    expanded = expand(tag_name)
    if ":" in expanded:
        return expanded
    return f"{LB_TAG}:{tag_name}"


def reserved_namespace(attribute: str, reserved: Iterable[str]) -> str | None:
    """The reserved namespace ``attribute`` (a qualified name) falls in, or None.

    Compared case-insensitively, and sub-namespaces (``<namespace>/...``) count, so that no
    spelling of a reserved name slips through as a lookalike."""
    folded = attribute.casefold()
    for namespace in reserved:
        prefix = namespace.casefold()
        if folded.startswith((prefix + ":", prefix + "/")):
            return namespace
    return None
