"""Attribute names, namespaces, aliases and types."""
