"""Pieces of the S3 backend that do not need a store: error translation, checksum encodings,
key joining, expiry arithmetic, the multipart writer and the ranged reads of plugins."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import urllib3
from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError

from jp_primary.errors import StorageUnavailable

MISSING_CODES = {"404", "NoSuchKey", "NotFound"}
UNSATISFIABLE_CODES = {"416", "InvalidRange"}

Call = Callable[..., Awaitable[Any]]


def error_code(exc: BaseException | None) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_missing(exc: BaseException | None) -> bool:
    return error_code(exc) in MISSING_CODES


def is_unsatisfiable_range(exc: BaseException | None) -> bool:
    return error_code(exc) in UNSATISFIABLE_CODES


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Missing objects become ``FileNotFoundError``, every other provider error
    ``StorageUnavailable`` (the detail names the provider's error code, never credentials)."""
    try:
        yield
    except ClientError as exc:
        if is_missing(exc):
            raise FileNotFoundError(exc.operation_name) from exc
        raise StorageUnavailable(f"object store error: {error_code(exc)}") from exc
    except (BotoCoreError, Boto3Error, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise StorageUnavailable(f"object store unreachable: {type(exc).__name__}") from exc


def checksum_b64(sha256_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(sha256_hex)).decode("ascii")


def checksum_hex(value: str | None) -> str | None:
    """The hex digest of a stored full-object ``ChecksumSHA256``; composite multipart checksums
    ("...-N", a hash of part hashes) are not a file's sha256, so they give None."""
    if not value or "-" in value:
        return None
    raw = base64.b64decode(value)
    return raw.hex() if len(raw) == 32 else None


def join_key(prefix: str, key: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/{key}" if prefix else key


def seconds_until(expires: datetime, limit: int) -> int:
    """Presign lifetimes are whole seconds, at least one, at most what SigV4 accepts."""
    remaining = int((expires - datetime.now(UTC)).total_seconds())
    return max(1, min(limit, remaining))


class MultipartWriter:
    """One multipart upload with a few parts in flight while the caller reads the next: one
    part at a time leaves the connection idle between parts (memory: parts × part size)."""

    def __init__(
        self, client: Any, bucket: str, key: str, call: Call, max_in_flight: int = 4
    ) -> None:
        self.client, self.bucket, self.key, self._call = client, bucket, key, call
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self._in_flight: list[asyncio.Task[None]] = []
        self._max_in_flight = max_in_flight
        self._parts_sent = 0

    async def start(self) -> None:
        created = await self._call(
            self.client.create_multipart_upload, Bucket=self.bucket, Key=self.key
        )
        self.upload_id = created["UploadId"]

    async def _upload(self, number: int, data: bytes | bytearray) -> None:
        done = await self._call(
            self.client.upload_part,
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=data,
        )
        part = {"PartNumber": number, "ETag": done["ETag"]}
        # With JP_S3_CHECKSUM=when_supported boto3 adds a checksum to each part; the store
        # then wants it repeated when the upload completes.
        part |= {name: value for name, value in done.items() if name.startswith("Checksum")}
        self.parts.append(part)

    async def _drain(self, keep: int = 0) -> None:
        while len(self._in_flight) > keep:
            await self._in_flight.pop(0)

    async def add_part(self, data: bytes | bytearray) -> None:
        await self._drain(keep=self._max_in_flight - 1)
        self._parts_sent += 1  # numbers in sending order; completions may come back in any
        task = asyncio.ensure_future(self._upload(self._parts_sent, data))
        # An abandoned part's failure is reported by the error that aborted the upload.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        self._in_flight.append(task)

    async def complete(self) -> None:
        await self._drain()
        self.parts.sort(key=lambda part: part["PartNumber"])
        await self._call(
            self.client.complete_multipart_upload,
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self.parts},
        )

    async def abort(self) -> None:
        """Drop the parts sent so far; also runs while the caller is being cancelled."""
        for task in self._in_flight:
            task.cancel()
        if self.upload_id is None:
            return
        pending = asyncio.ensure_future(
            self._call(
                self.client.abort_multipart_upload,
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
            )
        )
        # Shielded: a cancelled caller still gets its parts removed in the background.
        with contextlib.suppress(Exception):
            await asyncio.shield(pending)


class PresignedRanges:
    """``fetch(offset, length)`` for a ``RangeReader`` over one object: ranged GETs of one
    presigned URL (the ``Range`` header is not part of a SigV4 presigned signature) on a
    keep-alive connection pool. A plugin listing a tar makes one small GET per member; through
    boto3 each costs about 2 ms of CPU for signing and response parsing, here about 0.4 ms, which
    halves their latency on a busy machine (bench/RESULTS.md). A URL that has expired under a long
    read (403) is signed again once."""

    def __init__(
        self,
        presign: Callable[[], str],
        http: urllib3.PoolManager,
        timeout: urllib3.Timeout,
        attempts: int,
    ) -> None:
        self._presign, self._http, self._timeout = presign, http, timeout
        self._retries = urllib3.Retry(total=max(0, attempts - 1), backoff_factor=0.2, redirect=0)
        self._url = presign()

    def fetch(self, offset: int, length: int) -> bytes:
        answer = self._get(offset, length)
        if answer.status == 403:  # expired under a long read, or credentials rotated
            self._url = self._presign()
            answer = self._get(offset, length)
        if answer.status == 206:
            return bytes(answer.data)
        if answer.status == 200:  # a store that ignores Range sends everything
            return bytes(answer.data[offset : offset + length])
        if answer.status == 416:
            return b""
        if answer.status == 404:
            raise FileNotFoundError("GetObject")
        raise StorageUnavailable(f"object store error: HTTP {answer.status}")

    def _get(self, offset: int, length: int) -> urllib3.BaseHTTPResponse:
        try:
            return self._http.request(
                "GET",
                self._url,
                headers={"Range": f"bytes={offset}-{offset + length - 1}"},
                timeout=self._timeout,
                retries=self._retries,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise StorageUnavailable(f"object store unreachable: {type(exc).__name__}") from exc
