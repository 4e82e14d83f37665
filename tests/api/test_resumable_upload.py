"""Resumable sends: ``PUT /v1/uploads/{id}`` with ``Content-Range`` and ``GET /v1/uploads/{id}``
(services/resumable.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

import pytest

from jp_primary.services import resumable
from tests.helpers import ALICE, BOB, Api, register_job, start_upload

PIECE = 1000  # small pieces, so a few kB make several


@pytest.fixture(autouse=True)
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resumable, "PIECE_SIZE", PIECE)


def ranged(api: Api, upload_id: str, data: bytes, first: int, last: int, total: int) -> int:
    answer = api.client.put(
        f"/v1/uploads/{upload_id}",
        content=data,
        headers=api.auth(ALICE) | {"Content-Range": f"bytes {first}-{last}/{total}"},
    )
    return answer.status_code


def progress(api: Api, upload_id: str, subject: str = ALICE) -> dict[str, object]:
    answer = api.client.get(f"/v1/uploads/{upload_id}", headers=api.auth(subject))
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def staged(api: Api, upload_id: str) -> list[str]:
    folder = api.storage_root / "staging" / upload_id
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_ranges_are_kept_and_joined(api: Api) -> None:
    key = register_job(api)
    data = os.urandom(5_500)
    digest = hashlib.sha256(data).hexdigest()
    upload_id = start_upload(api, key, name="big", size=len(data), sha256=digest).json()[
        "upload_id"
    ]
    assert progress(api, upload_id) | {"expires_at": None} == {
        "upload_id": upload_id,
        "state": "open",
        "method": "api",
        "received": 0,
        "complete": False,
        "size": len(data),
        "expires_at": None,
    }
    assert ranged(api, upload_id, data[:2_500], 0, 2_499, len(data)) == 204
    assert progress(api, upload_id)["received"] == 2_500
    assert len(staged(api, upload_id)) == 3  # 1000 + 1000 + 500
    assert ranged(api, upload_id, data[2_500:], 2_500, len(data) - 1, len(data)) == 204
    assert progress(api, upload_id)["complete"] is True
    assert progress(api, upload_id)["received"] == len(data)
    assert not [name for name in staged(api, upload_id) if name.startswith("piece-")]
    committed = api.client.post(f"/v1/uploads/{upload_id}/commit", headers=api.auth(ALICE))
    assert committed.status_code == 200, committed.text
    assert committed.json()["sha256"] == digest
    body = api.client.get(
        f"/v1/jobs/{key}/files/osb", params={"name": "big"}, headers=api.auth(ALICE)
    )
    assert body.content == data
    assert staged(api, upload_id) == []


def test_a_short_body_keeps_its_whole_pieces(api: Api) -> None:
    """What a dropped connection leaves: the body ends before its range does."""
    key = register_job(api)
    data = os.urandom(4_000)
    upload_id = start_upload(api, key, name="cut").json()["upload_id"]
    answer = api.client.put(
        f"/v1/uploads/{upload_id}",
        content=data[:2_300],
        headers=api.auth(ALICE) | {"Content-Range": "bytes 0-3999/4000"},
    )
    assert answer.status_code == 422
    assert "send the rest from byte 2300" in answer.json()["detail"]
    assert progress(api, upload_id)["received"] == 2_300
    wrong = ranged(api, upload_id, data[3_000:], 3_000, 3_999, 4_000)
    assert wrong == 409
    assert ranged(api, upload_id, data[2_300:], 2_300, 3_999, 4_000) == 204
    committed = api.client.post(f"/v1/uploads/{upload_id}/commit", headers=api.auth(ALICE))
    assert committed.json()["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_range_from_zero_starts_over(api: Api) -> None:
    key = register_job(api)
    upload_id = start_upload(api, key, name="again").json()["upload_id"]
    assert ranged(api, upload_id, b"a" * 1_500, 0, 1_499, 3_000) == 204
    assert ranged(api, upload_id, b"b" * 3_000, 0, 2_999, 3_000) == 204
    committed = api.client.post(f"/v1/uploads/{upload_id}/commit", headers=api.auth(ALICE))
    assert committed.json()["sha256"] == hashlib.sha256(b"b" * 3_000).hexdigest()


def test_a_commit_before_the_last_range_stores_nothing(api: Api) -> None:
    key = register_job(api)
    upload_id = start_upload(api, key, name="half").json()["upload_id"]
    assert ranged(api, upload_id, b"x" * 1_000, 0, 999, 2_000) == 204
    early = api.client.post(f"/v1/uploads/{upload_id}/commit", headers=api.auth(ALICE))
    assert early.status_code == 409
    assert api.client.get(f"/v1/jobs/{key}/files", headers=api.auth(ALICE)).json() == []
    assert ranged(api, upload_id, b"y" * 1_000, 1_000, 1_999, 2_000) == 204
    done = api.client.post(f"/v1/uploads/{upload_id}/commit", headers=api.auth(ALICE))
    assert done.status_code == 200


@pytest.mark.parametrize(
    "header",
    ["bytes 0-9", "bytes=0-9/10", "bytes 5-4/10", "bytes 0-10/10", "bytes -1-3/10", "0-9/10"],
)
def test_bad_content_ranges(api: Api, header: str) -> None:
    key = register_job(api)
    upload_id = start_upload(api, key, name="bad").json()["upload_id"]
    answer = api.client.put(
        f"/v1/uploads/{upload_id}",
        content=b"0123456789",
        headers=api.auth(ALICE) | {"Content-Range": header},
    )
    assert answer.status_code == 422
    assert "Content-Range" in answer.json()["detail"]
    assert progress(api, upload_id)["received"] == 0


def test_a_range_over_the_size_limit_is_413(make_api: Callable[..., Api]) -> None:
    api = make_api(max_file_size=2_000)
    key = register_job(api)
    upload_id = start_upload(api, key, name="huge").json()["upload_id"]
    assert ranged(api, upload_id, b"x" * 10, 0, 9, 5_000) == 413


def test_only_the_starter_sees_the_progress(api: Api) -> None:
    key = register_job(api)
    upload_id = start_upload(api, key, name="mine").json()["upload_id"]
    other = api.client.get(f"/v1/uploads/{upload_id}", headers=api.auth(BOB))
    assert other.status_code == 403
    missing = api.client.get("/v1/uploads/nosuchupload", headers=api.auth(ALICE))
    assert missing.status_code in (404, 422)
