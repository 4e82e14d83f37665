"""The index server's configuration file (TOML), validated once at start-up.

Every problem is reported as ``<file>: <key path>: <what is wrong>`` (``feeds[1].url: ...``), so
an operator finds the line to fix. The file says what the index keeps (attributes: multi-valued
or not, queryable or not, indexed or not), where it listens and keeps its database, and which
primary storages it subscribes to (the original JPIS configuration, §2.5 of the reference).
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from jp_primary.attributes.names import SYSTEM_JOBID, SYSTEM_OWNER, expand
from jp_primary.errors import ConfigurationError

OPERATORS = ("eq", "ne", "lt", "gt", "within", "exists", "in", "prefix")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ServerSection(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8902, ge=0, le=65535)
    # How primaries reach this server's push receiver (needed by push feeds).
    public_url: str | None = None
    # Default: sqlite:///<home>/index.sqlite
    database_url: str | None = None
    home: str = "./var/index"
    # SQLite only: page cache per connection and memory-mapped size, in MB (session.py).
    sqlite_cache_mb: int = Field(64, ge=0, le=65536)
    sqlite_mmap_mb: int = Field(0, ge=0, le=1_048_576)
    tls_cert: str | None = None
    tls_key: str | None = None
    ca_file: str | None = None
    ca_dir: str | None = None
    client_cert: Literal["required", "optional"] = "optional"

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/") if value else value


class AuthSection(_Strict):
    """The same authentication stack as the primary; unset keys fall back to the JP_* settings."""

    token_key_path: str | None = None
    policy_file: str | None = None
    issuers_file: str | None = None
    trusted_frontends: list[str] | None = None
    frontend_dn_header: str | None = None
    voms_dir: str | None = None
    voms_ca_dir: str | None = None


class QuerySection(_Strict):
    # A query with no condition on an indexed attribute may ask for at most this many jobs.
    unindexed_limit: int = Field(20, ge=0, le=1000)
    # Jobs examined by such a query before it gives up with what it found (never a full scan).
    unindexed_scan: int = Field(10_000, ge=1)


class AttributeSection(_Strict):
    name: str = Field(min_length=1, max_length=1024)
    multivalued: bool = True
    queryable: bool = True
    indexed: bool = False

    @field_validator("name")
    @classmethod
    def _qualified(cls, value: str) -> str:
        name = expand(value)
        if ":" not in name:
            raise ValueError(f"{value!r} is not a qualified name (namespace:local) or an alias")
        if "*" in name and not name.endswith(":*"):
            raise ValueError("a pattern is a whole namespace: '<namespace>:*'")
        return name

    @model_validator(mode="after")
    def _indexed_is_queryable(self) -> AttributeSection:
        if self.indexed and not self.queryable:
            raise ValueError("an indexed attribute must be queryable")
        return self


class ConditionSection(_Strict):
    attr: str = Field(min_length=1)
    op: str
    value: str | None = None
    value2: str | None = None
    values: list[str] | None = None
    origin: Literal["SYSTEM", "USER", "FILE"] | None = None

    @field_validator("op")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in OPERATORS:
            raise ValueError(f"unknown operator {value!r}; use one of {', '.join(OPERATORS)}")
        return value

    def wire(self) -> dict[str, object]:
        return self.model_dump(exclude_none=True)


class FeedSection(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    url: str
    token: str | None = None
    token_file: str | None = None
    cert: str | None = None
    key: str | None = None
    ca_file: str | None = None
    ca_dir: str | None = None
    conditions: list[ConditionSection] = Field(default_factory=list)
    # Default: every configured attribute (as the original JPIS asked for).
    attributes: list[str] | None = None
    history: bool = True
    continuous: bool = True
    mode: Literal["push", "pull"] = "push"
    ttl_seconds: int = Field(3600, ge=10)
    # Failed refreshes (or pulls) in a row before the feed is subscribed again with history.
    max_failures: int = Field(3, ge=1)
    pull_wait: float = Field(10.0, ge=0, le=60)
    pull_limit: int = Field(200, ge=1, le=10000)  # the primary caps it (200 today)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be the primary storage's http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("attributes")
    @classmethod
    def _expand(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [expand(n) for n in value]

    @model_validator(mode="after")
    def _consistent(self) -> FeedSection:
        if not (self.history or self.continuous):
            raise ValueError("at least one of history and continuous must be true")
        if self.token is not None and self.token_file is not None:
            raise ValueError("give token or token_file, not both")
        if (self.cert is None) != (self.key is None):
            raise ValueError("cert and key go together")
        return self

    def fingerprint(self, attributes: list[str]) -> str:
        """What the primary was asked for: a change means subscribing again."""
        wanted = {
            "url": self.url,
            "attributes": attributes,
            "conditions": [c.wire() for c in self.conditions],
            "history": self.history,
            "continuous": self.continuous,
            "mode": self.mode,
        }
        return hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:32]


class IndexConfig(_Strict):
    server: ServerSection = Field(default_factory=ServerSection)
    auth: AuthSection = Field(default_factory=AuthSection)
    query: QuerySection = Field(default_factory=QuerySection)
    attributes: list[AttributeSection] = Field(min_length=1)
    feeds: list[FeedSection] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> IndexConfig:
        names = [a.name for a in self.attributes]
        if len(set(names)) != len(names):
            raise ValueError("an attribute is configured twice: " + _first_repeat(names))
        feeds = [f.name for f in self.feeds]
        if len(set(feeds)) != len(feeds):
            raise ValueError("a feed name is used twice: " + _first_repeat(feeds))
        if any(f.mode == "push" for f in self.feeds) and self.server.public_url is None:
            raise ValueError("push feeds need server.public_url (how primaries reach this server)")
        return self

    @property
    def database_url(self) -> str:
        return self.server.database_url or f"sqlite:///{Path(self.server.home) / 'index.sqlite'}"

    def feed_attributes(self, feed: FeedSection) -> list[str]:
        """What a feed asks the primary for: its own list, else every configured attribute."""
        names = feed.attributes or [a.name for a in self.attributes]
        # owner and jobid travel with every record (jobRecord.owner/.jobid); never ask for them.
        return [n for n in names if n not in (SYSTEM_OWNER, SYSTEM_JOBID)]


def _first_repeat(items: list[str]) -> str:
    seen: set[str] = set()
    for item in items:
        if item in seen:
            return item
        seen.add(item)
    return ""


def _key(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse_config(text: str, source: str = "index.toml") -> IndexConfig:
    """Parse and validate; ``ConfigurationError`` names the file and the key of every problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{source}: not valid TOML: {exc}") from None
    try:
        return IndexConfig.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{source}: {_key(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigurationError("\n".join(problems)) from None


def load_config(path: str | Path) -> IndexConfig:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read the index configuration {path}: {exc}") from None
    return parse_config(text, str(path))


def default_config_text() -> str:
    return files("jp_primary.index").joinpath("default.toml").read_text(encoding="utf-8")
