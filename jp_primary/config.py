"""Settings, one class per concern, read from ``JP_*`` environment variables or a settings file.

Every field is documented; ``jp-primary serve`` validates them all at start-up. Paths that are not
set explicitly live under ``JP_HOME`` (default ``./var``), so the embedded default is one folder.
Set ``JP_SETTINGS_FILE`` to read the same variables from a dotenv-style file.

Each class has one ``env_prefix`` (``JP_DATABASE_`` for :class:`DatabaseSettings`, ``JP_FTPD_`` for
:class:`DoorSettings`, ...), so fields are named without it: ``settings.database.url`` is
``JP_DATABASE_URL``, ``settings.door.public_url`` is ``JP_FTPD_PUBLIC_URL``. The few variables whose
documented names do not carry their class's prefix (``JP_MAX_FILE_SIZE``, ``JP_UPLOAD_DEADLINE``,
the tag caps, ...) name it with ``validation_alias``. :func:`env_names` lists each field's variable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    AliasPath,
    BaseModel,
    ByteSize,
    Field,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def settings_file() -> str | None:
    """The dotenv-style file named by ``JP_SETTINGS_FILE``, if any."""
    return os.environ.get("JP_SETTINGS_FILE")


def _iec(value: object) -> object:
    # pydantic's ByteSize wants "GiB"; operators also write "10G" or "10gib".
    if isinstance(value, str) and value.strip()[-1:].upper() in {"K", "M", "G", "T"}:
        return value.strip() + "iB"
    return value


class _JPSettings(BaseSettings):
    # populate_by_name: code and tests build settings with the field names (``backend="s3"``) even
    # where the environment variable is an alias (``max_file_size`` is JP_MAX_FILE_SIZE).
    model_config = SettingsConfigDict(
        env_prefix="JP_", extra="ignore", frozen=True, populate_by_name=True
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(_env_file=settings_file(), **values)


class ServerSettings(_JPSettings):
    home: Path = Field(Path("./var"), description="Folder of the embedded defaults (JP_HOME).")
    host: str = Field("127.0.0.1", description="Listen address (JP_HOST).")
    port: int = Field(8901, ge=0, le=65535, description="Listen port (JP_PORT).")
    workers: int = Field(1, ge=1, description="uvicorn worker processes (JP_WORKERS).")
    public_url: str | None = Field(
        None, description="Base URL clients use to reach the API, for upload URLs (JP_PUBLIC_URL)."
    )
    max_json_body: ByteSize = Field(
        ByteSize(1024**2),
        description="Largest request body of every route except the two byte-upload PUTs; larger "
        "bodies get 413 without being read (JP_MAX_JSON_BODY, e.g. 1MiB).",
    )
    max_bulk_body: ByteSize = Field(
        ByteSize(16 * 1024**2),
        description="Largest request body of POST /v1/files/bulk (many small files in one "
        "multipart request); larger bodies get 413 (JP_MAX_BULK_BODY, e.g. 16MiB).",
    )
    max_header_size: ByteSize = Field(
        ByteSize(64 * 1024),
        description="Largest request line plus headers; larger ones get 431 and the connection "
        "is closed (JP_MAX_HEADER_SIZE, e.g. 64KiB).",
    )
    header_timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds a client has from connecting (or from the first byte of its next "
        "request) to finishing the request headers, TLS handshake included; then the connection "
        "is closed (JP_HEADER_TIMEOUT).",
    )
    body_timeout: float = Field(
        60.0,
        gt=0,
        description="Seconds a request body may stop flowing before the connection is closed "
        "(JP_BODY_TIMEOUT). Time the server itself spends not reading does not count.",
    )
    max_requests_in_flight: int = Field(
        512,
        ge=1,
        description="Requests one worker process runs at once; more get 503 with Retry-After "
        "(JP_MAX_REQUESTS_IN_FLIGHT). Idle or stalled connections do not count.",
    )
    max_connections: int = Field(
        10000,
        ge=1,
        description="Open connections one worker process keeps; past it, the connection that has "
        "waited longest for its request headers is closed (JP_MAX_CONNECTIONS).",
    )
    access_log: bool = Field(
        False,
        description="Log one line per request: method, path, status, duration, peer, subject; "
        "never credentials or query strings (JP_ACCESS_LOG=1).",
    )

    @field_validator("max_json_body", "max_bulk_body", "max_header_size", mode="before")
    @classmethod
    def _accept_iec_units(cls, value: object) -> object:
        return _iec(value)


class DatabaseSettings(_JPSettings):
    model_config = SettingsConfigDict(env_prefix="JP_DATABASE_")

    url: str | None = Field(
        None,
        description="SQLAlchemy URL (JP_DATABASE_URL); default sqlite:///$JP_HOME/jp.sqlite. "
        "Use postgresql+psycopg://user@host/db for PostgreSQL.",
    )
    pool_size: int = Field(
        10, ge=1, description="Connections per process, PostgreSQL (JP_DATABASE_POOL_SIZE)."
    )
    query_timeout: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="Seconds a batch query (POST /v1/query) may run on PostgreSQL before the "
        "database cancels it and the client gets 503 with Retry-After "
        "(JP_DATABASE_QUERY_TIMEOUT).",
    )


class StorageSettings(_JPSettings):
    model_config = SettingsConfigDict(env_prefix="JP_STORAGE_")

    backend: str = Field(
        "filesystem",
        description="filesystem, s3, ftp or an installed third-party backend (JP_STORAGE_BACKEND).",
    )
    root: Path | None = Field(
        None,
        description="Root of the filesystem backend; default $JP_HOME/files (JP_STORAGE_ROOT).",
    )
    max_file_size: ByteSize = Field(
        ByteSize(10 * 1024**3),
        validation_alias="JP_MAX_FILE_SIZE",
        description="Larger uploads get 413 (JP_MAX_FILE_SIZE, e.g. 10GiB).",
    )
    upload_deadline: int = Field(
        3600,
        ge=1,
        validation_alias="JP_UPLOAD_DEADLINE",
        description="Seconds an uncommitted upload may sit idle (no bytes arriving) before it "
        "expires (JP_UPLOAD_DEADLINE); see docs/uploads.md.",
    )
    quarantine_retention_days: int = Field(
        90,
        ge=0,
        validation_alias="JP_QUARANTINE_RETENTION_DAYS",
        description="Days what a squatter stored in a job taken over by a trusted registration "
        "is kept for admins (JP_QUARANTINE_RETENTION_DAYS; docs/auth.md).",
    )

    @field_validator("max_file_size", mode="before")
    @classmethod
    def _accept_iec_units(cls, value: object) -> object:
        return _iec(value)


class AuthSettings(_JPSettings):
    token_key_path: Path | None = Field(
        None, description="HMAC key of the service's own tokens; default $JP_HOME/token.key."
    )
    token_ttl: int = Field(86400, ge=1, description="Default lifetime of `jp-primary token`.")
    policy_file: Path | None = Field(
        None, description="TOML file assigning roles to subjects (JP_POLICY_FILE; docs/auth.md)."
    )
    issuers_file: Path | None = Field(
        None,
        description="TOML file of accepted external token issuers, with their key files "
        "(JP_ISSUERS_FILE; docs/auth.md).",
    )
    trusted_frontends: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or CIDRs of TLS-terminating front ends whose client-DN header is "
        "believed, comma-separated (JP_TRUSTED_FRONTENDS, e.g. 127.0.0.1,10.1.0.0/24).",
    )
    voms_dir: Path | None = Field(
        None,
        description="The vomsdir: <vo>/<host>.lsc files and/or VOMS server certificates that "
        "VOMS attribute certificates are verified with (JP_VOMS_DIR; default $X509_VOMS_DIR or "
        "/etc/grid-security/vomsdir; none: FQANs are ignored; docs/auth.md).",
    )
    voms_ca_dir: Path | None = Field(
        None,
        description="CA certificates the VOMS server certificates named by .lsc files must chain "
        "to (JP_VOMS_CA_DIR; default $X509_CERT_DIR or /etc/grid-security/certificates).",
    )
    frontend_dn_header: str = Field(
        "X-SSL-Client-S-DN",
        description="Header in which a trusted front end passes the verified client DN, slash or "
        "RFC 4514 form (JP_FRONTEND_DN_HEADER).",
    )

    @field_validator("trusted_frontends", mode="before")
    @classmethod
    def _split_addresses(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


class DoorSettings(_JPSettings):
    """The FTP upload door (``jp-primary ftpd``). Named ``JP_FTPD_*``: ``JP_FTP_*`` belongs to the
    FTP storage backend."""

    model_config = SettingsConfigDict(env_prefix="JP_FTPD_")

    public_url: str | None = Field(
        None,
        description="How uploaders reach the door, ftp://host:port or ftps://host:port; when set, "
        "uploads started with direct=true on the filesystem backend get one-time FTP URLs "
        "(JP_FTPD_PUBLIC_URL).",
    )
    host: str = Field("127.0.0.1", description="Listen address of the door (JP_FTPD_HOST).")
    port: int = Field(8911, ge=0, le=65535, description="Listen port of the door (JP_FTPD_PORT).")
    certfile: Path | None = Field(
        None, description="Certificate (PEM): enables FTPS (JP_FTPD_CERTFILE)."
    )
    keyfile: Path | None = Field(
        None, description="Private key of the certificate, PEM (JP_FTPD_KEYFILE)."
    )
    passive_ports: str | None = Field(
        None, description="Passive port range, e.g. 60000-60100 (JP_FTPD_PASSIVE_PORTS)."
    )
    masquerade_address: str | None = Field(
        None,
        description="Address announced for passive connections, behind NAT "
        "(JP_FTPD_MASQUERADE_ADDRESS).",
    )


class TagSettings(_JPSettings):
    """Caps on user tags (docs/api-limits.md)."""

    max_per_request: int = Field(
        100,
        ge=1,
        le=1000,
        validation_alias="JP_MAX_TAGS_PER_REQUEST",
        description="Tags one request may record; more get 413 (JP_MAX_TAGS_PER_REQUEST).",
    )
    max_per_job: int = Field(
        1000,
        ge=1,
        validation_alias="JP_MAX_TAGS_PER_JOB",
        description="Tags (USER values) a job may hold; a request beyond gets 422 "
        "(JP_MAX_TAGS_PER_JOB).",
    )
    max_value_length: int = Field(
        16384,
        ge=1,
        le=65536,
        validation_alias="JP_MAX_TAG_VALUE",
        description="Characters of one tag value; longer gets 413 (JP_MAX_TAG_VALUE).",
    )


class ExtractionSettings(_JPSettings):
    """What one committed file may add to the database, whatever its bytes hold."""

    max_problems: int = Field(
        100,
        ge=1,
        validation_alias="JP_MAX_EXTRACTION_PROBLEMS",
        description="Extraction problems kept per file; the rest are only counted "
        "(JP_MAX_EXTRACTION_PROBLEMS).",
    )
    max_values_per_file: int = Field(
        200_000,
        ge=1,
        description="Derived values stored per file; the rest are reported as one problem "
        "(JP_MAX_VALUES_PER_FILE).",
    )


class FeedSettings(_JPSettings):
    """Feeds to index servers (docs/feeds.md)."""

    model_config = SettingsConfigDict(env_prefix="JP_FEED_")

    worker: bool = Field(
        True,
        description="Run a push-feed worker inside each `jp-primary serve` process "
        "(JP_FEED_WORKER=0 or `serve --no-feed-worker` to leave push feeds to "
        "`jp-primary feed-worker`).",
    )
    default_ttl: int = Field(
        3600, ge=1, description="Seconds a feed lives unless refreshed (JP_FEED_DEFAULT_TTL)."
    )
    max_ttl: int = Field(
        7 * 86400,
        ge=1,
        description="Largest ttl_seconds a subscriber may ask for (JP_FEED_MAX_TTL).",
    )
    purge_grace: int = Field(
        86400,
        ge=0,
        description="Seconds an expired feed (state, unacknowledged batches) is kept before it "
        "is purged; its pull tokens then answer 410 (JP_FEED_PURGE_GRACE).",
    )
    lease_seconds: float = Field(
        30.0,
        gt=0,
        description="How long a worker's claim on a push feed lasts without renewal; a dead "
        "worker's feeds are taken over after it (JP_FEED_LEASE_SECONDS).",
    )
    delivery_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds a receiver has to acknowledge a batch; later counts as a failure. "
        "Kept below the lease (JP_FEED_DELIVERY_TIMEOUT).",
    )
    retry_base: float = Field(
        1.0,
        gt=0,
        description="First retry delay in seconds, doubled per failure (JP_FEED_RETRY_BASE).",
    )
    retry_cap: float = Field(
        300.0, gt=0, description="Longest retry delay in seconds (JP_FEED_RETRY_CAP)."
    )
    batch_jobs: int = Field(
        200,
        ge=1,
        le=200,
        description="Jobs per batch at most (JP_FEED_BATCH_JOBS; batches also stay under 1 MiB).",
    )
    poll_interval: float = Field(
        0.1,
        gt=0,
        description="Seconds between a worker's looks at the change sequence "
        "(JP_FEED_POLL_INTERVAL).",
    )


class Settings(BaseModel):
    """All settings of one service process.

    The properties below are the *effective* values of the settings whose default depends on
    ``JP_HOME`` (``settings.database.url`` is None when unset; ``settings.database_url`` is the URL
    the service uses). Read those through the properties.
    """

    server: ServerSettings = Field(default_factory=ServerSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    door: DoorSettings = Field(default_factory=DoorSettings)
    tags: TagSettings = Field(default_factory=TagSettings)
    extraction: ExtractionSettings = Field(default_factory=ExtractionSettings)
    feed: FeedSettings = Field(default_factory=FeedSettings)

    @property
    def home(self) -> Path:
        return self.server.home

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.home / 'jp.sqlite'}"

    @property
    def storage_root(self) -> Path:
        return self.storage.root or self.home / "files"

    @property
    def token_key_path(self) -> Path:
        return self.auth.token_key_path or self.home / "token.key"


SETTINGS_CLASSES: tuple[type[_JPSettings], ...] = (
    ServerSettings,
    DatabaseSettings,
    StorageSettings,
    AuthSettings,
    DoorSettings,
    TagSettings,
    ExtractionSettings,
    FeedSettings,
)


def env_names(cls: type[BaseSettings]) -> dict[str, str]:
    """Field name -> the environment variable (and settings-file key) that sets it."""
    prefix = str(cls.model_config.get("env_prefix") or "")
    names: dict[str, str] = {}
    for name, field in cls.model_fields.items():
        alias: object = field.validation_alias
        if isinstance(alias, AliasChoices):
            alias = alias.choices[0]
        if isinstance(alias, AliasPath):
            alias = alias.path[0]
        names[name] = str(alias).upper() if alias is not None else f"{prefix}{name}".upper()
    return names


def settings_problems(exc: ValidationError) -> list[str]:
    """One ``JP_VARIABLE: what is wrong`` line per error of a settings class's validation.

    The offending value is not repeated: it may be a secret (a database URL with its password).
    """
    cls = next((c for c in SETTINGS_CLASSES if c.__name__ == exc.title), None)
    names = env_names(cls) if cls is not None else {}
    by_alias = {variable.lower(): variable for variable in names.values()}
    lines = []
    for error in exc.errors():
        first = str(error["loc"][0]) if error["loc"] else ""
        variable = names.get(first) or by_alias.get(first.lower()) or first.upper() or exc.title
        lines.append(f"{variable}: {error['msg']}")
    return lines


def load_settings() -> Settings:
    """The settings from the environment and ``JP_SETTINGS_FILE``.

    Raises pydantic's ``ValidationError`` for a bad value; :func:`settings_problems` words it.
    """
    return Settings()
