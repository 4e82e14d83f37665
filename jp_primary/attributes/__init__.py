"""Attribute names, namespaces, aliases and types (pure code, docs/attributes.md).

- ``names``: namespaces, ``ALIASES``, ``expand(name)``;
- ``types``: STRING, INTEGER, FLOAT, TIMESTAMP, BOOLEAN, LB_STATE, LB_DONE_CODE, XML — parse,
  normalize, order-preserving ``index_key``, compare;
- ``registry``: ``TypeRegistry`` (names and ``prefix*`` patterns -> types, unknown -> STRING),
  ``default_registry(plugins)`` from the plugins' ``attribute_types``;
- ``conditions``: ``Condition``, ``OPERATORS``, ``ConditionError``, ``compile_conditions``,
  ``CompiledCondition.holds``, ``matches`` — shared by batch queries and feeds;
- ``reference``: the generated tables of docs/attributes.md.
"""
