from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from jp_primary.app import create_app
from jp_primary.auth.identity import Role
from tests.helpers import ALICE, BOB, LB_HOST, Api, register_job, start_upload


def disk_files(api: Api) -> set[str]:
    root = api.storage_root
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_two_phase_upload_round_trip(api: Api) -> None:
    key = register_job(api)
    data = os.urandom(300_000)
    digest = hashlib.sha256(data).hexdigest()
    started = start_upload(api, key, name="out.tar", size=len(data), sha256=digest)
    assert started.status_code == 201
    ticket = started.json()
    assert ticket["method"] == "api"
    assert ticket["url"].endswith(f"/v1/uploads/{ticket['upload_id']}")
    sent = api.client.put(ticket["url"], content=data, headers=api.auth(ALICE))
    assert sent.status_code == 204
    committed = api.client.post(
        f"/v1/uploads/{ticket['upload_id']}/commit", headers=api.auth(ALICE)
    )
    assert committed.status_code == 200
    assert committed.json()["sha256"] == digest
    assert committed.json()["size"] == len(data)
    listed = api.client.get(f"/v1/jobs/{key}/files", headers=api.auth(ALICE)).json()
    assert [(f["class"], f["name"], f["sha256"]) for f in listed] == [("osb", "out.tar", digest)]
    body = api.client.get(
        f"/v1/jobs/{key}/files/osb", params={"name": "out.tar"}, headers=api.auth(ALICE)
    )
    assert body.content == data


def test_class_and_name_are_write_once(api: Api) -> None:
    key = register_job(api)
    lb = api.auth(LB_HOST, Role.TRUSTED)
    payload = {"class": "osb", "name": "a"}
    first = api.client.post(f"/v1/jobs/{key}/uploads", json=payload, headers=lb).json()
    busy = start_upload(api, key, name="a")
    assert busy.status_code == 409  # in progress, started by another identity
    assert "wait for it to be committed or to expire" in busy.json()["detail"]
    api.client.put(f"/v1/uploads/{first['upload_id']}", content=b"x", headers=lb)
    api.client.post(f"/v1/uploads/{first['upload_id']}/commit", headers=lb)
    again = start_upload(api, key, name="a")
    assert again.status_code == 409  # stored
    assert "write-once" in again.json()["detail"]
    assert start_upload(api, key, name="b").status_code == 201


def test_urn_aliases_and_unknown_classes(api: Api) -> None:
    key = register_job(api)
    assert start_upload(api, key, **{"class": "urn:org.glite.jp.primary:isb"}).json()["upload_id"]
    unknown = start_upload(api, key, **{"class": "no-such-class"})
    assert unknown.status_code == 422


def test_digest_mismatch_stores_nothing_and_allows_a_retry(api: Api) -> None:
    key = register_job(api)
    data = b"the real bytes"
    ticket = start_upload(api, key, sha256=hashlib.sha256(b"other bytes").hexdigest()).json()
    url = f"/v1/uploads/{ticket['upload_id']}"
    api.client.put(url, content=data, headers=api.auth(ALICE))
    before = disk_files(api)
    response = api.client.post(f"{url}/commit", headers=api.auth(ALICE))
    assert response.status_code == 422
    assert response.json()["error"] == "DigestMismatch"
    assert api.client.get(f"/v1/jobs/{key}/files", headers=api.auth(ALICE)).json() == []
    assert len(disk_files(api)) == len(before) - 1  # the received bytes were dropped
    missing = api.client.post(f"{url}/commit", headers=api.auth(ALICE))
    assert missing.status_code == 409  # no bytes any more


def test_size_mismatch_is_refused(api: Api) -> None:
    key = register_job(api)
    ticket = start_upload(api, key, size=10).json()
    url = f"/v1/uploads/{ticket['upload_id']}"
    api.client.put(url, content=b"12345", headers=api.auth(ALICE))
    assert api.client.post(f"{url}/commit", headers=api.auth(ALICE)).status_code == 422


def test_only_the_starter_may_send_commit_or_abort(api: Api) -> None:
    key = register_job(api)
    ticket = start_upload(api, key).json()
    url = f"/v1/uploads/{ticket['upload_id']}"
    assert api.client.put(url, content=b"x", headers=api.auth(BOB)).status_code == 403
    assert api.client.post(f"{url}/commit", headers=api.auth(BOB)).status_code == 403
    assert api.client.delete(url, headers=api.auth(BOB)).status_code == 403
    assert api.client.delete(url, headers=api.auth(ALICE)).status_code == 204
    assert api.client.put(url, content=b"x", headers=api.auth(ALICE)).status_code == 410


def test_only_owner_or_trusted_may_start(api: Api) -> None:
    key = register_job(api)
    assert start_upload(api, key, BOB).status_code == 403
    trusted = api.client.post(
        f"/v1/jobs/{key}/uploads", json={"class": "lb"}, headers=api.auth(LB_HOST, Role.TRUSTED)
    )
    assert trusted.status_code == 201


@pytest.mark.parametrize(
    "name", ["..", ".", "a/b", "../../etc/passwd", "x\x00y", "tab\there", "n" * 256, "a\\b"]
)
def test_escaping_file_names_are_rejected(api: Api, name: str) -> None:
    key = register_job(api)
    response = start_upload(api, key, name=name)
    assert response.status_code == 422
    one_shot = api.client.put(
        f"/v1/jobs/{key}/files/osb", params={"name": name}, content=b"x", headers=api.auth(ALICE)
    )
    assert one_shot.status_code == 422
    assert not any(".." in p or "passwd" in p for p in disk_files(api))


def test_oversized_upload_is_413_and_leaves_the_disk_unchanged(make_api) -> None:  # type: ignore[no-untyped-def]
    api = make_api(max_file_size=1024)
    key = register_job(api)
    ticket = start_upload(api, key).json()
    before = disk_files(api)
    url = f"/v1/uploads/{ticket['upload_id']}"
    response = api.client.put(url, content=b"x" * 5000, headers=api.auth(ALICE))
    assert response.status_code == 413
    assert disk_files(api) == before
    assert start_upload(api, key, name="big", size=5000).status_code == 413
    one_shot = api.client.put(
        f"/v1/jobs/{key}/files/osb",
        params={"name": "one-shot"},
        content=b"y" * 2000,
        headers=api.auth(ALICE),
    )
    assert one_shot.status_code == 413
    assert disk_files(api) == before


def test_expired_uploads_are_refused_and_cleaned_up(make_api) -> None:  # type: ignore[no-untyped-def]
    api = make_api(upload_deadline=1)
    key = register_job(api)
    ticket = start_upload(api, key, name="late").json()
    url = f"/v1/uploads/{ticket['upload_id']}"
    api.client.put(url, content=b"bytes", headers=api.auth(ALICE))
    assert any(p.startswith("staging") for p in disk_files(api))
    time.sleep(1.2)
    assert api.client.post(f"{url}/commit", headers=api.auth(ALICE)).status_code == 410
    expired = api.client.portal.call(api.client.app.state.services.uploads.expire_due)  # type: ignore[union-attr,attr-defined]
    assert expired >= 1
    assert not any(p.startswith("staging") for p in disk_files(api))
    assert start_upload(api, key, name="late").status_code == 201  # the slot is free again


def test_one_shot_put_verifies_the_header_digest(api: Api) -> None:
    key = register_job(api)
    data = b"sandbox bytes"
    wrong = {"X-Content-SHA256": hashlib.sha256(b"nope").hexdigest()}
    response = api.client.put(
        f"/v1/jobs/{key}/files/isb", content=data, headers=api.auth(ALICE) | wrong
    )
    assert response.status_code == 422
    assert api.client.get(f"/v1/jobs/{key}/files", headers=api.auth(ALICE)).json() == []
    right = {"X-Content-SHA256": hashlib.sha256(data).hexdigest()}
    ok = api.client.put(f"/v1/jobs/{key}/files/isb", content=data, headers=api.auth(ALICE) | right)
    assert ok.status_code == 201
    assert ok.json()["sha256"] == right["X-Content-SHA256"]
    again = api.client.put(f"/v1/jobs/{key}/files/isb", content=data, headers=api.auth(ALICE))
    assert again.status_code == 409


def test_two_concurrent_commits_make_exactly_one_file(api: Api) -> None:
    key = register_job(api)
    data = os.urandom(2_000_000)
    ticket = start_upload(api, key, name="race").json()
    url = f"/v1/uploads/{ticket['upload_id']}"
    api.client.put(url, content=data, headers=api.auth(ALICE))
    app = create_app(api.settings)

    async def race() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                commits = [client.post(f"{url}/commit", headers=api.auth(ALICE)) for _ in range(4)]
                return list(await asyncio.gather(*commits))

    responses = asyncio.run(race())
    assert [r.status_code for r in responses] == [200] * 4
    assert len({r.json()["committed_at"] for r in responses}) == 1
    files = api.client.get(f"/v1/jobs/{key}/files", headers=api.auth(ALICE)).json()
    assert len(files) == 1
    assert files[0]["sha256"] == hashlib.sha256(data).hexdigest()
    body = api.client.get(
        f"/v1/jobs/{key}/files/osb", params={"name": "race"}, headers=api.auth(ALICE)
    )
    assert body.content == data


def test_a_second_put_replaces_the_first(api: Api) -> None:
    key = register_job(api)
    ticket = start_upload(api, key).json()
    url = f"/v1/uploads/{ticket['upload_id']}"
    api.client.put(url, content=b"first attempt", headers=api.auth(ALICE))
    api.client.put(url, content=b"second", headers=api.auth(ALICE))
    committed = api.client.post(f"{url}/commit", headers=api.auth(ALICE)).json()
    assert committed["sha256"] == hashlib.sha256(b"second").hexdigest()
    assert not any(p.startswith("staging") for p in disk_files(api))


def test_upload_start_is_strict_about_types(api: Api) -> None:
    key = register_job(api)
    for body in ({"class": "osb", "size": False}, {"class": "osb", "size": "10"}, {"class": 1}):
        response = api.client.post(f"/v1/jobs/{key}/uploads", json=body, headers=api.auth(ALICE))
        assert response.status_code == 422, body
    bad_digest = start_upload(api, key, sha256="not-hex")
    assert bad_digest.status_code == 422
    no_door = start_upload(api, key, size=3, direct=True)
    assert no_door.status_code == 422  # the filesystem backend without a door has no direct path


# -- defect 5: retries after a crash or a failure ----------------------------------------------


@contextlib.asynccontextmanager
async def live_app(api: Api) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """The app in this event loop, with request bodies streamed as the client produces them."""
    app = create_app(api.settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield app.state.services, client


def staging_entries(api: Api) -> list[str]:
    staging = api.storage_root / "staging"
    return sorted(p.name for p in staging.iterdir()) if staging.exists() else []


def test_defect_5_one_shot_put_retried_after_a_crash_supersedes_the_stale_upload(
    api: Api,
) -> None:
    key = register_job(api)
    # What a server killed during `PUT /v1/jobs/{key}/files/isb` leaves: an open upload the
    # sender never learnt the id of, and a half-written temporary file in its staging directory.
    stale = start_upload(api, key, **{"class": "isb"}).json()
    half = api.storage_root / "staging" / stale["upload_id"] / ".tmp-0123.abcdef"
    half.parent.mkdir(parents=True)
    half.write_bytes(b"half of it")
    data = b"the whole sandbox"
    retried = api.client.put(f"/v1/jobs/{key}/files/isb", content=data, headers=api.auth(ALICE))
    assert retried.status_code == 201, retried.text
    assert retried.json()["sha256"] == hashlib.sha256(data).hexdigest()
    assert not half.exists()
    assert staging_entries(api) == []
    late = api.client.put(stale["url"], content=b"x", headers=api.auth(ALICE))
    assert late.status_code == 410
    assert "superseded" in late.json()["detail"]


def test_defect_5_a_retry_supersedes_a_stalled_sender_which_fails_cleanly(api: Api) -> None:
    key = register_job(api)
    url = f"/v1/jobs/{key}/files/osb"

    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        release = asyncio.Event()

        async def stalling() -> AsyncIterator[bytes]:
            yield b"first half, then the sender stalls"
            await release.wait()
            yield b" and wakes up too late"

        async with live_app(api) as (_services, client):
            first = asyncio.create_task(
                client.put(url, content=stalling(), headers=api.auth(ALICE))
            )
            for _ in range(500):  # until the stalled sender's bytes are being staged
                if staging_entries(api):
                    break
                await asyncio.sleep(0.01)
            assert staging_entries(api), "the first PUT never started writing"
            second = await client.put(url, content=b"the retry", headers=api.auth(ALICE))
            release.set()
            return await first, second

    first, second = asyncio.run(scenario())
    assert second.status_code == 201, second.text
    assert first.status_code == 410, first.text
    assert "superseded" in first.json()["detail"]
    body = api.client.get(f"/v1/jobs/{key}/files/osb", headers=api.auth(ALICE))
    assert body.content == b"the retry"
    assert staging_entries(api) == []


def test_defect_5_another_identitys_upload_is_not_superseded(api: Api) -> None:
    key = register_job(api)
    lb = api.auth(LB_HOST, Role.TRUSTED)
    ours = start_upload(api, key, name="x").json()
    # A trusted service may take over (e.g. another L&B node retrying the same dump)...
    taken = api.client.post(
        f"/v1/jobs/{key}/uploads", json={"class": "osb", "name": "x"}, headers=lb
    )
    assert taken.status_code == 201
    assert api.client.put(ours["url"], content=b"x", headers=api.auth(ALICE)).status_code == 410
    # ...but the owner does not silently cancel the trusted service's upload.
    busy = start_upload(api, key, name="x")
    assert busy.status_code == 409
    assert "another identity" in busy.json()["detail"]


def test_defect_5_every_refusal_says_what_to_do_next(api: Api) -> None:
    key = register_job(api)
    wrong = hashlib.sha256(b"other").hexdigest()
    ticket = start_upload(api, key, name="a", sha256=wrong).json()
    url = f"/v1/uploads/{ticket['upload_id']}"
    nothing = api.client.post(f"{url}/commit", headers=api.auth(ALICE))
    assert nothing.status_code == 409
    assert f"PUT /v1/uploads/{ticket['upload_id']}" in nothing.json()["detail"]
    api.client.put(url, content=b"bytes", headers=api.auth(ALICE))
    mismatch = api.client.post(f"{url}/commit", headers=api.auth(ALICE))
    assert mismatch.status_code == 422
    assert "send the bytes again with PUT" in mismatch.json()["detail"]
    assert staging_entries(api) == []  # the failed commit left no staging behind
    # The two-phase upload stays open for its starter: send the right bytes and commit.
    api.client.put(url, content=b"other", headers=api.auth(ALICE))
    assert api.client.post(f"{url}/commit", headers=api.auth(ALICE)).status_code == 200
    stored = start_upload(api, key, name="a")
    assert stored.status_code == 409
    assert "write-once" in stored.json()["detail"]

    one_shot = api.client.put(
        f"/v1/jobs/{key}/files/isb",
        content=b"bytes",
        headers=api.auth(ALICE) | {"X-Content-SHA256": wrong},
    )
    assert one_shot.status_code == 422
    assert "send the file again with the same PUT" in one_shot.json()["detail"]
    assert staging_entries(api) == []

    aborted = start_upload(api, key, name="b").json()
    api.client.delete(aborted["url"], headers=api.auth(ALICE))
    gone = api.client.put(aborted["url"], content=b"x", headers=api.auth(ALICE))
    assert gone.status_code == 410
    assert "start a new upload" in gone.json()["detail"]


# -- defect 10: an upload slower than its deadline ----------------------------------------------


def test_defect_10_bytes_arriving_past_the_deadline_are_not_cut(make_api) -> None:  # type: ignore[no-untyped-def]
    api = make_api(upload_deadline=2)
    key = register_job(api)
    pieces = [os.urandom(10_000) for _ in range(12)]

    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        async with live_app(api) as (services, client):
            ticket = (
                await client.post(
                    f"/v1/jobs/{key}/uploads", json={"class": "osb"}, headers=api.auth(ALICE)
                )
            ).json()

            async def slow() -> AsyncIterator[bytes]:
                for piece in pieces:  # 12 x 0.4 s: more than twice the deadline
                    await asyncio.sleep(0.4)
                    await services.uploads.expire_due()  # expiry runs while the bytes arrive
                    yield piece

            sent = await client.put(ticket["url"], content=slow(), headers=api.auth(ALICE))
            await asyncio.sleep(0.5)  # the client takes its time to commit, within a deadline
            await services.uploads.expire_due()
            committed = await client.post(
                f"/v1/uploads/{ticket['upload_id']}/commit", headers=api.auth(ALICE)
            )
            return sent, committed

    sent, committed = asyncio.run(scenario())
    assert sent.status_code == 204, sent.text
    assert committed.status_code == 200, committed.text
    assert committed.json()["sha256"] == hashlib.sha256(b"".join(pieces)).hexdigest()
    assert staging_entries(api) == []


def test_defect_10_a_sender_stalled_past_its_deadline_gets_410_not_500(make_api) -> None:  # type: ignore[no-untyped-def]
    api = make_api(upload_deadline=1)
    key = register_job(api)

    async def scenario() -> httpx.Response:
        async with live_app(api) as (services, client):
            ticket = (
                await client.post(
                    f"/v1/jobs/{key}/uploads", json={"class": "osb"}, headers=api.auth(ALICE)
                )
            ).json()

            async def stalled() -> AsyncIterator[bytes]:
                yield b"a first part"
                await asyncio.sleep(2.5)  # nothing arrives for longer than the deadline
                await services.uploads.expire_due()
                yield b"the rest, too late"

            return await client.put(ticket["url"], content=stalled(), headers=api.auth(ALICE))

    sent = asyncio.run(scenario())
    assert sent.status_code == 410, sent.text
    assert "expired" in sent.json()["detail"]
    assert "start a new upload" in sent.json()["detail"]
    assert staging_entries(api) == []
    late = start_upload(api, key)  # the name is free again
    assert late.status_code == 201


def test_a_client_that_goes_away_mid_upload_is_no_server_error(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    key = register_job(api)
    token = api.auth(ALICE)["Authorization"].encode()
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": f"/v1/jobs/{key}/files/osb",
        "raw_path": f"/v1/jobs/{key}/files/osb".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"authorization", token), (b"content-length", b"1000")],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8901),
    }
    messages = iter(
        [
            {"type": "http.request", "body": b"x" * 100, "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(_message: dict[str, Any]) -> None:
        return None

    async def main() -> None:
        app = create_app(api.settings)
        async with app.router.lifespan_context(app):
            await app(scope, receive, send)  # must not raise: the client is gone, not the server

    with caplog.at_level("INFO"):
        asyncio.run(main())
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert any("went away" in r.getMessage() for r in caplog.records)
    retried = api.client.put(f"/v1/jobs/{key}/files/osb", content=b"y", headers=api.auth(ALICE))
    assert retried.status_code == 201, retried.text  # nothing of the cut upload stands in the way
