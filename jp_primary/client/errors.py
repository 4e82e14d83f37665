"""One exception class per error class of the API (the ``error`` field of every error body).

``raise_for(response)`` turns an error answer into the class its ``error`` field names, falling
back on the status code when the field is missing (a proxy in front of the service, say).
"""

from __future__ import annotations

import contextlib
from typing import Any

import httpx


class ClientError(Exception):
    """Base of everything the client raises."""


class ConnectionFailed(ClientError):
    """The service could not be reached (after the retries an idempotent call gets)."""


class CredentialsError(ClientError):
    """No usable credentials: a named file is missing or unreadable."""


class APIError(ClientError):
    """The service answered with an error body ``{"error", "detail", ...}``."""

    status_code = 0

    def __init__(self, status: int, error: str, detail: str, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {error}: {detail}")
        self.status = status
        self.error = error
        self.detail = detail
        self.body = body


class BadRequest(APIError):
    status_code = 400


class Unauthenticated(APIError):
    status_code = 401


class Forbidden(APIError):
    status_code = 403


class NotFound(APIError):
    status_code = 404


class Conflict(APIError):
    status_code = 409


class Gone(APIError):
    status_code = 410


class PayloadTooLarge(APIError):
    status_code = 413


class RangeNotSatisfiable(APIError):
    status_code = 416


class InvalidInput(APIError):
    status_code = 422


class DigestMismatch(InvalidInput):
    """The bytes did not match the declared size or sha256; nothing was stored."""


class ValidationError(InvalidInput):
    """The request did not validate (``errors`` lists the fields)."""


class StorageUnavailable(APIError):
    """A dependency of the service is down (503); ``retry_after`` is its advice in seconds."""

    status_code = 503

    @property
    def retry_after(self) -> float | None:
        value = self.body.get("_retry_after")
        return float(value) if isinstance(value, (int, float)) else None


ERROR_CLASSES: dict[str, type[APIError]] = {
    cls.__name__: cls
    for cls in (
        BadRequest,
        Unauthenticated,
        Forbidden,
        NotFound,
        Conflict,
        Gone,
        PayloadTooLarge,
        RangeNotSatisfiable,
        InvalidInput,
        DigestMismatch,
        ValidationError,
        StorageUnavailable,
    )
}
BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    413: PayloadTooLarge,
    416: RangeNotSatisfiable,
    422: InvalidInput,
    503: StorageUnavailable,
}


def error_for(response: httpx.Response) -> APIError:
    """The exception an error answer stands for (the response must be read)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"detail": response.text[:500]}
    name = str(body.get("error") or "")
    detail = str(body.get("detail") or response.reason_phrase)
    cls = ERROR_CLASSES.get(name) or BY_STATUS.get(response.status_code) or APIError
    if response.status_code == 503:
        with contextlib.suppress(ValueError):
            body["_retry_after"] = float(response.headers.get("retry-after", ""))
    return cls(response.status_code, name or f"HTTP{response.status_code}", detail, body)
