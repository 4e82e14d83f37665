"""A commit takes the size and sha256 from what the store verified where it can vouch for them
(S3: the checksum a presigned POST pinned, read back with a HEAD) and hashes the bytes only where
it cannot; on every backend a wrong object is still refused."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import httpx
import pytest

from jp_primary.backends.s3 import S3Backend
from tests.helpers import ALICE, Api, register_job

from .conftest import FTPSite, use_s3
from .servers import BUCKET, Seaweed, s3_client

MIB = 1024 * 1024


def start_direct(api: Api, key: str, name: str, data: bytes) -> dict[str, Any]:
    body = {
        "class": "osb",
        "name": name,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "direct": True,
    }
    response = api.client.post(f"/v1/jobs/{key}/uploads", json=body, headers=api.auth(ALICE))
    assert response.status_code == 201, response.text
    return dict(response.json())


def commit(api: Api, upload_id: str) -> httpx.Response:
    return api.client.post(f"/v1/uploads/{upload_id}/commit", headers=api.auth(ALICE))


@pytest.fixture
def s3_api(
    seaweed: Seaweed, monkeypatch: pytest.MonkeyPatch, make_api: Callable[..., Api]
) -> tuple[Api, str, str]:
    prefix = use_s3(monkeypatch, seaweed.endpoint)
    return make_api(backend="s3"), prefix, seaweed.endpoint


def test_s3_commit_reads_no_byte_of_a_verified_direct_upload(
    s3_api: tuple[Api, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    api, _, _ = s3_api
    key = register_job(api)
    data = os.urandom(2 * MIB)
    ticket = start_direct(api, key, "out", data)
    posted = httpx.post(ticket["url"], data=ticket["fields"], files={"file": ("f", data)})
    assert posted.status_code in (200, 204), posted.text

    def no_full_read(*args: object, **kwargs: object) -> None:
        raise AssertionError("the commit read the whole object back")

    fetched: list[int] = []
    opener = S3Backend.open_reader

    @contextmanager
    def counting(self: S3Backend, key: str) -> Iterator[BinaryIO]:
        with opener(self, key) as reader:
            yield reader
            fetched.append(reader.fetched)  # type: ignore[attr-defined]

    monkeypatch.setattr(S3Backend, "read", no_full_read)
    monkeypatch.setattr(S3Backend, "local_copy", no_full_read)
    monkeypatch.setattr(S3Backend, "open_reader", counting)
    answer = commit(api, ticket["upload_id"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["sha256"] == hashlib.sha256(data).hexdigest()
    # The osb plugin looked at the first bytes (not a tar) and stopped.
    assert len(fetched) == 1
    assert 0 < fetched[0] <= 64 * 1024


@pytest.mark.parametrize("store_checksum", [True, False], ids=["store-checksum", "hashed"])
def test_s3_commit_refuses_a_wrong_object(
    s3_api: tuple[Api, str, str], store_checksum: bool
) -> None:
    """Bytes that reached the staging key without the POST policy (a writer with the service's
    own credentials, a store that ignores policies): refused whether the store kept a checksum
    of them (which then is not the declared one) or not (the commit hashes them)."""
    api, prefix, endpoint = s3_api
    key = register_job(api)
    declared, stored = os.urandom(100_000), os.urandom(100_000)
    ticket = start_direct(api, key, "out", declared)
    extra = {}
    if store_checksum:
        extra["ChecksumSHA256"] = base64.b64encode(hashlib.sha256(stored).digest()).decode()
    staging = f"{prefix}/staging/{ticket['upload_id']}/direct"
    client = s3_client(endpoint)
    client.put_object(Bucket=BUCKET, Key=staging, Body=stored, **extra)
    head = client.head_object(Bucket=BUCKET, Key=staging, ChecksumMode="ENABLED")
    assert ("ChecksumSHA256" in head) is store_checksum
    answer = commit(api, ticket["upload_id"])
    assert answer.status_code == 422, answer.text
    assert hashlib.sha256(stored).hexdigest() in answer.json()["detail"]
    files = api.client.get(f"/v1/jobs/{key}/files", headers=api.auth(ALICE)).json()
    assert files == []
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/staging/")
    assert listed.get("KeyCount", 0) == 0  # the failed upload's bytes are gone


def test_ftp_commit_refuses_bytes_that_are_not_the_declared_ones(
    ftp_site: FTPSite, monkeypatch: pytest.MonkeyPatch, make_api: Callable[..., Api]
) -> None:
    """The FTP store vouches for nothing: the service hashed the bytes on their way in, and the
    commit compares that with the declaration."""
    monkeypatch.setenv("JP_FTP_URL", ftp_site.url(f"svc-{secrets.token_hex(4)}"))
    api = make_api(backend="ftp")
    key = register_job(api)
    declared, sent = b"the declared bytes", b"some other bytes!!"
    body = {"class": "osb", "size": len(sent), "sha256": hashlib.sha256(declared).hexdigest()}
    ticket = api.client.post(f"/v1/jobs/{key}/uploads", json=body, headers=api.auth(ALICE)).json()
    put = api.client.put(ticket["url"], content=sent, headers=api.auth(ALICE))
    assert put.status_code in (200, 204), put.text
    answer = commit(api, ticket["upload_id"])
    assert answer.status_code == 422, answer.text
    assert hashlib.sha256(sent).hexdigest() in answer.json()["detail"]
    assert api.client.get(f"/v1/jobs/{key}/files", headers=api.auth(ALICE)).json() == []
