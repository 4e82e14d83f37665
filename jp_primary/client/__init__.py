"""The client library of jp_primary: ``Client``/``AsyncClient`` for the REST API, typed results,
one exception per API error class, and ``upload_files`` (fire and forget through a spool).

It talks to the service only over HTTP (an import-linter contract keeps it off ``services`` and
``db``). See docs/client.md.
"""

from jp_primary.client.aio import AsyncClient
from jp_primary.client.calls import BulkUpload, Retry
from jp_primary.client.credentials import Credentials, default_proxy_path
from jp_primary.client.errors import (
    APIError,
    BadRequest,
    ClientError,
    Conflict,
    ConnectionFailed,
    CredentialsError,
    DigestMismatch,
    Forbidden,
    Gone,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RangeNotSatisfiable,
    StorageUnavailable,
    Unauthenticated,
    ValidationError,
)
from jp_primary.client.spool import upload_files
from jp_primary.client.sync import Client

__all__ = [
    "APIError",
    "AsyncClient",
    "BadRequest",
    "BulkUpload",
    "Client",
    "ClientError",
    "Conflict",
    "ConnectionFailed",
    "Credentials",
    "CredentialsError",
    "DigestMismatch",
    "Forbidden",
    "Gone",
    "InvalidInput",
    "NotFound",
    "PayloadTooLarge",
    "RangeNotSatisfiable",
    "Retry",
    "StorageUnavailable",
    "Unauthenticated",
    "ValidationError",
    "default_proxy_path",
    "upload_files",
]
