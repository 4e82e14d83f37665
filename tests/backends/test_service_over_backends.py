"""The service itself on S3 (SeaweedFS) and FTP (pyftpdlib), with only settings changed."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable

import httpx
import pytest

from jp_primary.services import resumable
from tests.helpers import ALICE, Api, register_job

from .conftest import FTPSite, use_s3
from .servers import Seaweed, ftp_server

MIB = 1024 * 1024


@pytest.fixture(params=["s3", "ftp"])
def remote_api(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, make_api: Callable[..., Api]
) -> Api:
    if request.param == "s3":
        seaweed: Seaweed = request.getfixturevalue("seaweed")
        use_s3(monkeypatch, seaweed.endpoint)
    else:
        site: FTPSite = request.getfixturevalue("ftp_site")
        monkeypatch.setenv("JP_FTP_URL", site.url(f"svc-{secrets.token_hex(4)}"))
    return make_api(backend=request.param)


def test_uploads_and_downloads_through_the_service(remote_api: Api) -> None:
    api = remote_api
    key = register_job(api)
    data = os.urandom(9 * MIB)  # more than one 8 MiB part
    put = api.client.put(
        f"/v1/jobs/{key}/files/osb",
        params={"name": "big"},
        content=data,
        headers=api.auth(ALICE) | {"X-Content-SHA256": hashlib.sha256(data).hexdigest()},
    )
    assert put.status_code == 201, put.text
    ticket = api.client.post(
        f"/v1/jobs/{key}/uploads", json={"class": "isb", "size": 5}, headers=api.auth(ALICE)
    ).json()
    api.client.put(ticket["url"], content=b"small", headers=api.auth(ALICE))
    commit = api.client.post(f"/v1/uploads/{ticket['upload_id']}/commit", headers=api.auth(ALICE))
    assert commit.status_code == 200
    whole = api.client.get(
        f"/v1/jobs/{key}/files/osb", params={"name": "big"}, headers=api.auth(ALICE)
    )
    assert hashlib.sha256(whole.content).hexdigest() == put.json()["sha256"]
    part = api.client.get(
        f"/v1/jobs/{key}/files/osb",
        params={"name": "big"},
        headers=api.auth(ALICE) | {"Range": f"bytes={8 * MIB - 3}-{8 * MIB + 2}"},
    )
    assert part.status_code == 206
    assert part.content == data[8 * MIB - 3 : 8 * MIB + 3]
    assert api.client.get("/readyz").status_code == 200


def test_presigned_post_straight_to_s3(
    seaweed: Seaweed, monkeypatch: pytest.MonkeyPatch, make_api: Callable[..., Api]
) -> None:
    use_s3(monkeypatch, seaweed.endpoint)
    api = make_api(backend="s3")
    key = register_job(api)
    data = os.urandom(100_000)
    digest = hashlib.sha256(data).hexdigest()

    def start(name: str) -> dict:  # type: ignore[type-arg]
        body = {"class": "osb", "name": name, "size": len(data), "sha256": digest, "direct": True}
        response = api.client.post(f"/v1/jobs/{key}/uploads", json=body, headers=api.auth(ALICE))
        assert response.status_code == 201, response.text
        return dict(response.json())

    good = start("good")
    assert good["method"] == "s3-post"
    posted = httpx.post(good["url"], data=good["fields"], files={"file": ("f", data)})
    assert posted.status_code in (200, 204), posted.text
    commit = api.client.post(f"/v1/uploads/{good['upload_id']}/commit", headers=api.auth(ALICE))
    assert commit.status_code == 200
    assert commit.json()["sha256"] == digest

    bad = start("bad")
    tampered = bytearray(data)
    tampered[0] ^= 1
    refused = httpx.post(bad["url"], data=bad["fields"], files={"file": ("f", bytes(tampered))})
    assert refused.status_code == 400  # the store itself checks the pinned checksum
    nothing = api.client.post(f"/v1/uploads/{bad['upload_id']}/commit", headers=api.auth(ALICE))
    assert nothing.status_code == 409
    names = [
        f["name"] for f in api.client.get(f"/v1/jobs/{key}/files", headers=api.auth(ALICE)).json()
    ]
    assert names == ["good"]

    link = api.client.get(
        f"/v1/jobs/{key}/files/osb", params={"name": "good", "link": 1}, headers=api.auth(ALICE)
    )
    assert link.status_code == 200
    fetched = httpx.get(link.json()["url"])  # no bearer token goes to the store
    assert fetched.content == data


def test_unreachable_store_is_503_and_stores_nothing(
    monkeypatch: pytest.MonkeyPatch, make_api: Callable[..., Api], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    server = ftp_server(tmp_path)
    monkeypatch.setenv("JP_FTP_URL", f"ftp://jp:jp-secret@127.0.0.1:{server.port}/area")
    monkeypatch.setenv("JP_FTP_TIMEOUT", "3")
    api = make_api(backend="ftp")
    key = register_job(api)
    kept = api.client.put(f"/v1/jobs/{key}/files/osb", content=b"kept", headers=api.auth(ALICE))
    assert kept.status_code == 201
    server.stop()  # the store goes away mid-test
    ready = api.client.get("/readyz")
    assert ready.status_code == 503
    assert "retry-after" in ready.headers
    put = api.client.put(f"/v1/jobs/{key}/files/isb", content=b"lost", headers=api.auth(ALICE))
    assert put.status_code == 503
    assert "retry-after" in put.headers
    read = api.client.get(f"/v1/jobs/{key}/files/osb", headers=api.auth(ALICE))
    assert read.status_code == 503
    listed = api.client.get(f"/v1/jobs/{key}/files", headers=api.auth(ALICE)).json()
    assert [f["class"] for f in listed] == ["osb"]  # no row claims bytes the store lacks


def test_a_resumable_send_over_the_store(remote_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ranged PUTs keep their pieces in the store itself and the last range joins them."""
    monkeypatch.setattr(resumable, "PIECE_SIZE", 100_000)
    api = remote_api
    key = register_job(api)
    data = os.urandom(250_000)
    upload_id = api.client.post(
        f"/v1/jobs/{key}/uploads", json={"class": "osb", "name": "r"}, headers=api.auth(ALICE)
    ).json()["upload_id"]

    def send(first: int, last: int) -> httpx.Response:
        return api.client.put(
            f"/v1/uploads/{upload_id}",
            content=data[first : last + 1],
            headers=api.auth(ALICE) | {"Content-Range": f"bytes {first}-{last}/{len(data)}"},
        )

    short = api.client.put(  # a send cut after 150,000 bytes keeps one whole piece
        f"/v1/uploads/{upload_id}",
        content=data[:150_000],
        headers=api.auth(ALICE) | {"Content-Range": f"bytes 0-{len(data) - 1}/{len(data)}"},
    )
    assert short.status_code == 422
    got = api.client.get(f"/v1/uploads/{upload_id}", headers=api.auth(ALICE)).json()
    assert got["received"] == 150_000
    assert send(150_000, len(data) - 1).status_code == 204
    commit = api.client.post(f"/v1/uploads/{upload_id}/commit", headers=api.auth(ALICE))
    assert commit.status_code == 200, commit.text
    assert commit.json()["sha256"] == hashlib.sha256(data).hexdigest()
    whole = api.client.get(
        f"/v1/jobs/{key}/files/osb", params={"name": "r"}, headers=api.auth(ALICE)
    )
    assert whole.content == data
