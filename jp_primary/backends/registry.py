"""Backends chosen by name: built-ins and third parties through the ``jp_primary.backends``
entry-point group, each imported only when chosen, each validating its own options."""

from __future__ import annotations

import os
from importlib.metadata import entry_points
from typing import Any

from pydantic import ValidationError

from jp_primary.backends.base import StorageBackend
from jp_primary.config import Settings
from jp_primary.errors import ConfigurationError

GROUP = "jp_primary.backends"
_INSTALL_HINTS = {
    "s3": "the s3 backend needs boto3 (pip install boto3)",
    "ftp": "the ftp backend needs pyftpdlib[ssl] for its upload door",
}


def available() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))


def _env_options(prefix: str) -> dict[str, Any]:
    """All ``JP_<NAME>_*`` variables of one backend, lower-cased without the prefix."""
    return {
        key[len(prefix) :].lower(): value
        for key, value in os.environ.items()
        if key.startswith(prefix)
    }


def backend_options(name: str, settings: Settings) -> dict[str, Any]:
    if name == "filesystem":
        return {"root": settings.storage_root}
    return _env_options(f"JP_{name.upper()}_")


def create_backend(settings: Settings, options: dict[str, Any] | None = None) -> StorageBackend:
    name = settings.storage.storage_backend
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not matches:
        raise ConfigurationError(
            f"unknown storage backend {name!r}; installed: {', '.join(available())}"
        )
    try:
        cls = matches[0].load()
    except ImportError as exc:
        hint = _INSTALL_HINTS.get(name, "install the package that provides it")
        raise ConfigurationError(
            f"storage backend {name!r} cannot be loaded ({exc}); {hint}"
        ) from None
    raw = backend_options(name, settings) if options is None else options
    try:
        parsed = cls.options_model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or name}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigurationError(
            f"invalid options for storage backend {name!r}: {problems}"
        ) from None
    backend: StorageBackend = cls(parsed)
    return backend
