"""Presigned POST uploads and GET downloads, checked by a real S3 implementation (SeaweedFS with
an identities file, so signatures, expiry and POST policy conditions are enforced)."""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from jp_primary.backends.base import DirectUpload
from jp_primary.backends.s3 import S3Backend
from jp_primary.backends.s3_support import PresignedRanges
from jp_primary.errors import PayloadTooLarge

from .conftest import s3_options
from .servers import Seaweed

pytestmark = pytest.mark.anyio


@pytest.fixture
async def s3(seaweed: Seaweed) -> AsyncIterator[S3Backend]:
    backend = S3Backend(s3_options(seaweed.endpoint, f"direct-{secrets.token_hex(4)}"))
    yield backend
    await backend.close()


def soon() -> datetime:
    return datetime.now(UTC) + timedelta(minutes=5)


def post(upload: DirectUpload, data: bytes) -> httpx.Response:
    assert upload.method == "s3-post"
    return httpx.post(upload.url, data=upload.fields, files={"file": ("blob", data)}, timeout=10)


async def test_presigned_post_with_the_declared_bytes(s3: S3Backend) -> None:
    data = os.urandom(70_000)
    digest = hashlib.sha256(data).hexdigest()
    upload = s3.direct_upload("staging/u1", size=len(data), sha256=digest, expires=soon())
    assert upload is not None
    response = post(upload, data)
    assert response.status_code in (200, 201, 204), response.text
    info = await s3.stat("staging/u1")
    assert (info.size, info.sha256) == (len(data), digest)


async def test_presigned_post_with_wrong_size_is_refused(s3: S3Backend) -> None:
    data = os.urandom(1000)
    upload = s3.direct_upload(
        "staging/u2", size=len(data) + 1, sha256=hashlib.sha256(data).hexdigest(), expires=soon()
    )
    assert upload is not None
    assert post(upload, data).status_code == 400
    with pytest.raises(FileNotFoundError):
        await s3.stat("staging/u2")


async def test_presigned_post_with_wrong_sha256_is_refused(s3: S3Backend) -> None:
    declared, sent = b"a" * 1000, b"b" * 1000
    upload = s3.direct_upload(
        "staging/u3", size=len(sent), sha256=hashlib.sha256(declared).hexdigest(), expires=soon()
    )
    assert upload is not None
    response = post(upload, sent)
    assert response.status_code == 400
    assert "BadDigest" in response.text
    with pytest.raises(FileNotFoundError):
        await s3.stat("staging/u3")


async def test_presigned_get_serves_the_object_and_only_it(s3: S3Backend) -> None:
    data = os.urandom(5000)
    await s3.put_stream("files/j/lb", _once(data), max_size=10_000)
    url = s3.presigned_download("files/j/lb", expires=soon())
    assert url is not None
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == data
    assert httpx.get(url.replace("files/j/lb", "files/j/xx"), timeout=10).status_code == 403


async def test_expired_presigned_urls_are_refused(s3: S3Backend) -> None:
    data = b"late bytes"
    await s3.put_stream("files/j/old", _once(data), max_size=100)
    expires = datetime.now(UTC) + timedelta(seconds=1)
    url = s3.presigned_download("files/j/old", expires=expires)
    upload = s3.direct_upload("staging/late", size=len(data), sha256=None, expires=expires)
    assert url is not None
    assert upload is not None
    time.sleep(2.1)  # presigned lifetimes are whole seconds; one must pass
    assert httpx.get(url, timeout=10).status_code == 403
    assert post(upload, data).status_code == 403
    with pytest.raises(FileNotFoundError):
        await s3.stat("staging/late")


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _chunked(data: bytes, size: int = 1024 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):  # 17 MiB: parts of 8, 8 and 1 MiB
        yield data[start : start + size]


async def test_failed_multipart_upload_is_aborted(s3: S3Backend) -> None:
    async def parts() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield os.urandom(9 * 1024 * 1024)  # each chunk completes one part

    def pending() -> list[object]:
        listing = s3.client.list_multipart_uploads(Bucket=s3.bucket, Prefix=s3.key(""))
        return list(listing.get("Uploads", []))

    with pytest.raises(PayloadTooLarge):
        await s3.put_stream("big/one", parts(), max_size=20 * 1024 * 1024)
    assert pending() == []
    with pytest.raises(FileNotFoundError):
        await s3.stat("big/one")


@pytest.mark.parametrize("checksum", ["when_required", "when_supported"])
async def test_multipart_round_trip_with_each_checksum_mode(
    seaweed: Seaweed, checksum: str
) -> None:
    area = f"ck-{secrets.token_hex(4)}"
    mib8 = 8 * 1024 * 1024  # so that publish makes a multipart server-side copy too
    backend = S3Backend(s3_options(seaweed.endpoint, area, checksum=checksum, copy_part_size=mib8))
    data = os.urandom(17 * 1024 * 1024)
    try:
        stored = await backend.put_stream("m", _chunked(data), max_size=len(data))
        assert stored.sha256 == hashlib.sha256(data).hexdigest()
        assert b"".join([c async for c in backend.read("m")]) == data
        await backend.publish("m", "n")
        assert (await backend.stat("n")).size == len(data)
    finally:
        await backend.close()


async def test_plugin_reads_sign_again_when_their_url_expired(s3: S3Backend) -> None:
    """The ranged reads of plugins use one presigned URL; one that expired under a long read is
    signed again, a missing object is FileNotFoundError."""
    data = os.urandom(50_000)
    await s3.put_stream("pr/obj", _once(data), max_size=len(data))
    signed: list[str] = []

    def presign(lifetime: int) -> str:
        url: str = s3.client.generate_presigned_url(
            "get_object", Params={"Bucket": s3.bucket, "Key": s3.key("pr/obj")}, ExpiresIn=lifetime
        )
        signed.append(url)
        return url

    lifetimes = iter([1, 600])
    ranges = PresignedRanges(lambda: presign(next(lifetimes)), s3._http, s3._http_timeout, 1)
    time.sleep(2.1)  # the first URL has expired
    assert ranges.fetch(100, 50) == data[100:150]
    assert len(signed) == 2
    assert ranges.fetch(49_990, 100) == data[49_990:]  # a range past the end is cut
    await s3.delete("pr/obj")
    with pytest.raises(FileNotFoundError):
        ranges.fetch(0, 10)
