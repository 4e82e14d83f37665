"""Objects in an S3-compatible store (AWS, SeaweedFS, Ceph RGW, MinIO) through boto3.

boto3 blocks, so every call runs in the backend's own bounded thread pool and the event loop keeps
serving other requests. Uploads through the API are hashed on the way: a stream that fits in one
part becomes one ``put_object`` carrying its ``ChecksumSHA256`` (the store checks it and keeps
it); a longer one is a multipart upload that is aborted on any failure, so a key is visible whole
or not at all. Clients that send bytes themselves get a presigned POST whose policy pins the
exact size and sha256 declared at upload start.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Literal, TypeVar, cast

import boto3
import urllib3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.httpsession import get_cert_path
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from jp_primary.backends.base import (
    CHUNK_SIZE,
    BackendOptions,
    DirectUpload,
    ObjectInfo,
    StoredObject,
    Tally,
)
from jp_primary.backends.reader import RangeReader
from jp_primary.backends.s3_support import (
    MultipartWriter,
    PresignedRanges,
    checksum_b64,
    checksum_hex,
    is_unsatisfiable_range,
    join_key,
    seconds_until,
    translate_errors,
)
from jp_primary.errors import StorageUnavailable

MIN_PART_SIZE = 8 * 1024 * 1024
MAX_PARTS = 10_000
T = TypeVar("T")


class S3Options(BackendOptions):
    """``JP_S3_*`` settings (environment or settings file), named without the prefix."""

    model_config = SettingsConfigDict(env_prefix="JP_S3_")

    bucket: str = Field(min_length=3, max_length=63)
    endpoint_url: str | None = None  # None: AWS itself
    region: str = "us-east-1"
    access_key_id: str | None = None  # None: boto3's own credential chain
    secret_access_key: SecretStr | None = None
    addressing_style: Literal["path", "virtual"] = "path"
    checksum: Literal["when_required", "when_supported"] = "when_required"
    prefix: str = ""  # keys live under this prefix, so one bucket can hold several services
    part_size: int = Field(default=MIN_PART_SIZE, ge=MIN_PART_SIZE)
    # Server-side copies (publish) bigger than this go part by part; S3 caps one copy at 5 GiB.
    copy_part_size: int = Field(default=512 * 1024**2, ge=MIN_PART_SIZE, le=5 * 1024**3)
    max_threads: int = Field(default=8, ge=1, le=64)
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=3, ge=1)
    max_presign_seconds: int = Field(default=7 * 24 * 3600, ge=1)  # SigV4 allows one week
    # Plugins' ranged reads: a forward seek up to this many bytes is read through rather than
    # costing a new GET (0: every seek is a new GET, fewest bytes; see docs/storage.md).
    read_through: int = Field(default=0, ge=0, le=1024**3)


def make_client(options: S3Options) -> Any:
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": options.addressing_style},
        request_checksum_calculation=options.checksum,
        response_checksum_validation=options.checksum,
        connect_timeout=options.connect_timeout,
        read_timeout=options.read_timeout,
        retries={"max_attempts": options.max_attempts, "mode": "standard"},
        max_pool_connections=options.max_threads,
    )
    secret = options.secret_access_key
    return boto3.session.Session().client(
        "s3",
        endpoint_url=options.endpoint_url,
        region_name=options.region,
        aws_access_key_id=options.access_key_id,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
        config=config,
    )


class S3Backend:
    name: ClassVar[str] = "s3"
    renames_cheaply: ClassVar[bool] = False
    keeps_checksums: ClassVar[bool] = True
    signs_urls: ClassVar[bool] = True
    remote: ClassVar[bool] = True
    options_model: ClassVar[type[BackendOptions]] = S3Options

    def __init__(self, options: S3Options) -> None:
        self.options = options
        self.bucket = options.bucket
        self.client = make_client(options)
        self._pool = ThreadPoolExecutor(options.max_threads, thread_name_prefix="jp-s3")
        self._transfer = TransferConfig(
            multipart_threshold=options.part_size,
            multipart_chunksize=options.part_size,
            max_concurrency=min(4, options.max_threads),
            use_threads=True,
        )
        # Plugins' ranged reads (PresignedRanges): keep-alive connections, TLS verified as boto3
        # does (its CA bundle).
        self._http = urllib3.PoolManager(
            maxsize=options.max_threads, cert_reqs="CERT_REQUIRED", ca_certs=get_cert_path(True)
        )
        self._http_timeout = urllib3.Timeout(
            connect=options.connect_timeout, read=options.read_timeout
        )
        # Server-side copies move no bytes through us: fewer, bigger parts (at most 5 GiB each).
        self._copy = TransferConfig(
            multipart_threshold=options.copy_part_size,
            multipart_chunksize=options.copy_part_size,
            max_concurrency=min(4, options.max_threads),
        )

    def key(self, key: str) -> str:
        return join_key(self.options.prefix, key)

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one blocking boto3 call in the pool, provider errors translated."""

        def run() -> T:
            with translate_errors():
                return fn(*args, **kwargs)

        return await asyncio.get_running_loop().run_in_executor(self._pool, run)

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], *, max_size: int
    ) -> StoredObject:
        full = self.key(key)
        # S3 allows 10,000 parts: grow them for very large limits.
        part_size = max(self.options.part_size, -(-max_size // MAX_PARTS))
        tally = Tally(max_size)
        buffer = bytearray()
        writer: MultipartWriter | None = None
        try:
            async for chunk in chunks:
                buffer += tally.add(chunk)
                if len(buffer) >= part_size:
                    if writer is None:
                        writer = MultipartWriter(self.client, self.bucket, full, self._call)
                        await writer.start()
                    part, buffer = buffer, bytearray()  # hand over, no copy
                    await writer.add_part(part)
            if writer is None:
                await self._call(
                    self.client.put_object,
                    Bucket=self.bucket,
                    Key=full,
                    Body=bytes(buffer),
                    ChecksumSHA256=checksum_b64(tally.sha256),
                )
            else:
                if buffer:
                    await writer.add_part(buffer)
                await writer.complete()
        except BaseException:
            if writer is not None:
                await writer.abort()
            raise
        return tally.stored(key)

    async def publish(self, src: str, dst: str) -> None:
        source = {"Bucket": self.bucket, "Key": self.key(src)}
        try:
            # The transfer manager copies big objects part by part (single copies stop at 5 GiB).
            await self._call(
                self.client.copy, source, self.bucket, self.key(dst), Config=self._copy
            )
        except FileNotFoundError:
            await self.stat(dst)  # published by an earlier, interrupted attempt (or missing)
            return
        await self.delete(src)

    async def read(
        self, key: str, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key(key)}
        if length == 0:
            await self.stat(key)  # still report a missing key
            return
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            request["Range"] = f"bytes={offset}-{end}"
        response = await self._call(self._get_range, request)
        if response is None:
            return  # offset at (or past) the end: nothing to send
        body = response["Body"]
        try:
            while chunk := await self._call(body.read, CHUNK_SIZE):
                yield chunk
        finally:
            body.close()

    def _get_range(self, request: dict[str, Any]) -> Any:
        try:
            return self.client.get_object(**request)
        except ClientError as exc:
            if is_unsatisfiable_range(exc):
                return None
            raise

    async def stat(self, key: str) -> ObjectInfo:
        head = await self._call(
            self.client.head_object, Bucket=self.bucket, Key=self.key(key), ChecksumMode="ENABLED"
        )
        return ObjectInfo(
            key=key,
            size=int(head["ContentLength"]),
            sha256=checksum_hex(head.get("ChecksumSHA256")),
            modified=head.get("LastModified"),
        )

    async def delete(self, key: str) -> None:
        await self._call(self.client.delete_object, Bucket=self.bucket, Key=self.key(key))

    async def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        # Like a directory: "a/b" lists "a/b/..." but not "a/bc".
        base = self.key(prefix).rstrip("/") + "/" if prefix else self.key("")
        strip = len(self.key(""))
        request: dict[str, Any] = {"Bucket": self.bucket, "Prefix": base}
        while True:
            page = await self._call(self.client.list_objects_v2, **request)
            for item in page.get("Contents", []):
                yield ObjectInfo(
                    key=item["Key"][strip:], size=int(item["Size"]), modified=item["LastModified"]
                )
            if not page.get("IsTruncated"):
                return
            request["ContinuationToken"] = page["NextContinuationToken"]

    @contextmanager
    def open_reader(self, key: str) -> Iterator[BinaryIO]:
        full = self.key(key)
        with translate_errors():
            head = self.client.head_object(Bucket=self.bucket, Key=full)

        def presign() -> str:
            url: str = self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": full},
                ExpiresIn=min(3600, self.options.max_presign_seconds),
            )
            return url

        ranges = PresignedRanges(presign, self._http, self._http_timeout, self.options.max_attempts)
        size = int(head["ContentLength"])
        with RangeReader(size, ranges.fetch, read_through=self.options.read_through) as reader:
            yield cast(BinaryIO, reader)

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="jp-s3-") as tmp:
            path = Path(tmp) / "object"
            with translate_errors():
                self.client.download_file(
                    self.bucket, self.key(key), str(path), Config=self._transfer
                )
            yield path

    async def check(self) -> None:
        try:
            await self._call(self.client.head_bucket, Bucket=self.bucket)
        except FileNotFoundError:
            raise StorageUnavailable(f"bucket {self.bucket!r} does not exist") from None

    def direct_upload(
        self, key: str, *, size: int | None, sha256: str | None, expires: datetime
    ) -> DirectUpload | None:
        fields: dict[str, str] = {}
        conditions: list[Any] = []
        if size is not None:
            conditions.append(["content-length-range", size, size])
        if sha256 is not None:
            fields["x-amz-checksum-algorithm"] = "SHA256"
            fields["x-amz-checksum-sha256"] = checksum_b64(sha256)
            conditions += [{name: value} for name, value in fields.items()]
        post = self.client.generate_presigned_post(
            Bucket=self.bucket,
            Key=self.key(key),
            Fields=fields,
            Conditions=conditions,
            ExpiresIn=seconds_until(expires, self.options.max_presign_seconds),
        )
        return DirectUpload(method="s3-post", url=post["url"], fields=dict(post["fields"]))

    def presigned_download(self, key: str, *, expires: datetime) -> str | None:
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self.key(key)},
            ExpiresIn=seconds_until(expires, self.options.max_presign_seconds),
        )
        return url

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._http.clear()
        self.client.close()
