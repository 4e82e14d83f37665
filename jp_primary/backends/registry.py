"""Backends chosen by name: built-ins and third parties through the ``jp_primary.backends``
entry-point group, each imported only when chosen, each validating its own options.

A backend's options are a settings class of its own (``options_model``, a ``BackendOptions``
with its prefix, e.g. ``JP_S3_``): they are read from the environment and from the
``JP_SETTINGS_FILE`` file, like every other setting, and an unknown name under the prefix in
either place stops the start (a typo must not silently fall back to a default).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from pydantic import ValidationError

from jp_primary.backends.base import BackendOptions, StorageBackend
from jp_primary.config import Settings
from jp_primary.errors import ConfigurationError

GROUP = "jp_primary.backends"
_INSTALL_HINTS = {
    "s3": "the s3 backend needs boto3 (pip install boto3)",
    "ftp": "the ftp backend needs pyftpdlib[ssl] for its upload door",
}


def available() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))


def load(name: str) -> type[StorageBackend]:
    """The backend class registered under ``name``."""
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not matches:
        raise ConfigurationError(
            f"unknown storage backend {name!r}; installed: {', '.join(available())}"
        )
    try:
        cls: type[StorageBackend] = matches[0].load()
    except ImportError as exc:
        hint = _INSTALL_HINTS.get(name, "install the package that provides it")
        raise ConfigurationError(
            f"storage backend {name!r} cannot be loaded ({exc}); {hint}"
        ) from None
    return cls


def _problems(cls: type[StorageBackend], exc: ValidationError) -> str:
    prefix = str(cls.options_model.model_config.get("env_prefix") or "").upper()

    def one(err: Any) -> str:
        where = ".".join(str(p) for p in err["loc"]) or cls.name
        if err["type"] == "extra_forbidden":
            return f"{where}: unknown setting {prefix}{where.upper()}"
        return f"{where}: {err['msg']}"

    return "; ".join(one(err) for err in exc.errors())


def build_options(
    cls: type[StorageBackend], overrides: Mapping[str, Any] | None = None
) -> BackendOptions:
    """The backend's options from the environment and the settings file (``overrides`` win)."""
    try:
        return cls.options_model(**dict(overrides or {}))
    except ValidationError as exc:
        raise ConfigurationError(
            f"invalid options for storage backend {cls.name!r}: {_problems(cls, exc)}"
        ) from None


def _overrides(name: str, settings: Settings) -> dict[str, Any]:
    return {"root": settings.storage_root} if name == "filesystem" else {}


def create_backend(settings: Settings, options: Mapping[str, Any] | None = None) -> StorageBackend:
    """The configured backend; ``options`` given explicitly replace the environment entirely."""
    name = settings.storage.backend
    cls = load(name)
    if options is None:
        parsed = build_options(cls, _overrides(name, settings))
    else:
        try:
            parsed = cls.options_model.model_validate(dict(options))
        except ValidationError as exc:
            raise ConfigurationError(
                f"invalid options for storage backend {name!r}: {_problems(cls, exc)}"
            ) from None
    backend: StorageBackend = cls(parsed)  # type: ignore[call-arg]
    return backend
