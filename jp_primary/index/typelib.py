"""The one place the index meets the attribute library's types and conditions.

Kept small so the index follows the library (``jp_primary.attributes``) without forking it: the
registry the primary uses, compiled conditions and ``matches``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class TypeLookup(Protocol):
    def index_key(self, name: str, text: str) -> str | None: ...


class _PlainTypes:
    """Until the library exists: every attribute is a string (its key is its text)."""

    def index_key(self, name: str, text: str) -> str | None:
        return text


def build_types() -> TypeLookup:
    return _PlainTypes()


def compile_where(where: Sequence[Mapping[str, Any]]) -> list[Any]:
    raise NotImplementedError


def all_hold(compiled: Sequence[Any], values: Mapping[str, Sequence[tuple[str, str]]]) -> bool:
    raise NotImplementedError
