"""Errors that carry their HTTP status; one handler in the API layer renders them.

Lower layers raise these without knowing about HTTP frameworks: the status code is data here,
turned into a response only by ``jp_primary.api.errors``.
"""

from __future__ import annotations


class JPError(Exception):
    """Base of every error the service reports to a client."""

    status_code = 500
    headers: dict[str, str] | None = None

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    @property
    def error(self) -> str:
        return type(self).__name__


class InternalError(JPError):
    """A failure that is the service's, not the request's (reported for one item of a bulk
    request while the others go on)."""


class BadRequest(JPError):
    status_code = 400


class Unauthenticated(JPError):
    status_code = 401
    headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(JPError):
    status_code = 403


class NotFound(JPError):
    status_code = 404


class NotAcceptable(JPError):
    """None of the media types the client accepts can be produced (the detail lists them)."""

    status_code = 406


class Conflict(JPError):
    status_code = 409


class Gone(JPError):
    status_code = 410


class PayloadTooLarge(JPError):
    status_code = 413


class RangeNotSatisfiable(JPError):
    status_code = 416


class InvalidInput(JPError):
    """Semantically invalid input (malformed jobid, unknown class, bad name)."""

    status_code = 422


class DigestMismatch(JPError):
    """Received bytes do not match the declared size or sha256; nothing was stored."""

    status_code = 422


class StorageUnavailable(JPError):
    """The storage backend (or another dependency) cannot be reached; retry later."""

    status_code = 503

    def __init__(self, detail: str, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(retry_after)}


class ConfigurationError(Exception):
    """Invalid settings detected at start-up (not an HTTP error: the service refuses to start)."""
