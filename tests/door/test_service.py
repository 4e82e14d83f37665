"""The door with the service: the API issues credentials, the door takes the bytes, commit
checks them."""

from __future__ import annotations

import ftplib
import hashlib
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from jp_primary.db.session import create_db_engine
from jp_primary.door.grants import DatabaseDoorGrants
from jp_primary.door.server import FTPDoor
from tests.backends.servers import free_port
from tests.helpers import ALICE, Api, register_job, start_upload


@dataclass
class DoorApi:
    api: Api
    port: int

    def new_job(self) -> str:
        return register_job(self.api)

    def start(self, key: str, data: bytes, **extra: Any) -> dict[str, Any]:
        body = {"class": "isb", "size": len(data), "direct": True, **extra}
        response = start_upload(self.api, key, **body)
        assert response.status_code == 201, response.text
        ticket: dict[str, Any] = response.json()
        assert ticket["method"] == "ftp"
        return ticket

    def login(self, ticket: dict[str, Any]) -> tuple[ftplib.FTP, str]:
        url = urlsplit(ticket["url"])
        ftp = ftplib.FTP()  # noqa: S321  (the door under test speaks FTP)
        ftp.connect("127.0.0.1", self.port)
        ftp.login(url.username or "", unquote(url.password or ""))
        return ftp, url.path.lstrip("/")

    def store(self, ticket: dict[str, Any], data: bytes) -> None:
        ftp, name = self.login(ticket)
        with ftp:
            ftp.storbinary(f"STOR {name}", io.BytesIO(data))

    def commit(self, ticket: dict[str, Any]) -> Any:
        return self.api.client.post(
            f"/v1/uploads/{ticket['upload_id']}/commit", headers=self.api.auth(ALICE)
        )


@pytest.fixture
def door_api(monkeypatch: pytest.MonkeyPatch, make_api: Callable[..., Api]) -> Iterator[DoorApi]:
    port = free_port()
    monkeypatch.setenv("JP_FTPD_PUBLIC_URL", f"ftp://127.0.0.1:{port}")
    api = make_api()
    engine = create_db_engine(api.settings.database_url, pool_size=2)
    door = FTPDoor(api.storage_root, DatabaseDoorGrants(engine), port=port, auth_failed_timeout=0)
    door.start()
    try:
        yield DoorApi(api, port)
    finally:
        door.stop()
        engine.dispose()


def test_ftp_door_takes_one_file_for_one_upload(door_api: DoorApi) -> None:
    key = door_api.new_job()
    data = os.urandom(50_000)
    ticket = door_api.start(key, data)
    ftp, name = door_api.login(ticket)
    with ftp:
        ftp.storbinary(f"STOR {name}", io.BytesIO(data))
        with pytest.raises(ftplib.error_perm):
            ftp.storbinary(f"STOR {name}", io.BytesIO(b"again"))
    commit = door_api.commit(ticket)
    assert commit.status_code == 200, commit.text
    assert commit.json()["sha256"] == hashlib.sha256(data).hexdigest()
    with pytest.raises(ftplib.error_perm):  # the upload ended: the grant with it
        door_api.login(ticket)


def test_defect_17_door_feat_lists_only_what_it_serves(door_api: DoorApi) -> None:
    key = door_api.new_job()
    ticket = door_api.start(key, b"x")
    ftp, name = door_api.login(ticket)
    with ftp:
        features = {line.strip().split(" ")[0] for line in ftp.sendcmd("FEAT").splitlines()[1:-1]}
        assert features, "FEAT lists something"
        assert not features & {"MLST", "SIZE", "REST", "MDTM", "MFMT"}
        for command in ("MLST direct", "SIZE direct", "REST 0", "MDTM direct", "MFMT 1 direct"):
            with pytest.raises(ftplib.error_perm, match="^50"):
                ftp.sendcmd(command)
        assert ftp.sendcmd("OPTS UTF8 ON").startswith("2")  # what is listed is served
        ftp.storbinary(f"STOR {name}", io.BytesIO(b"x"))
    assert urlsplit(ticket["url"]).path == "/direct"
    assert door_api.commit(ticket).status_code == 200


def test_defect_5_failed_door_commit_ends_the_upload_and_a_new_one_gets_fresh_credentials(
    door_api: DoorApi,
) -> None:
    key = door_api.new_job()
    data = os.urandom(20_000)
    staging = door_api.api.storage_root / "staging"
    first = door_api.start(key, data, sha256=hashlib.sha256(b"something else").hexdigest())
    door_api.store(first, data)
    failed = door_api.commit(first)
    assert failed.status_code == 422
    assert "start a new upload" in failed.json()["detail"]
    assert "fresh credentials" in failed.json()["detail"]
    again = door_api.commit(first)
    assert again.status_code == 410  # the upload ended: it says so, and what to do
    assert "fresh credentials" in again.json()["detail"]
    assert not (staging / first["upload_id"]).exists()  # no bytes, no directory left
    with pytest.raises(ftplib.error_perm):
        door_api.login(first)

    second = door_api.start(key, data, sha256=hashlib.sha256(data).hexdigest())
    door_api.store(second, data)
    committed = door_api.commit(second)
    assert committed.status_code == 200, committed.text
    assert not (staging / second["upload_id"]).exists()


def test_defect_5_new_door_upload_supersedes_an_unfinished_one(door_api: DoorApi) -> None:
    key = door_api.new_job()
    data = os.urandom(1_000)
    abandoned = door_api.start(key, data)
    door_api.store(abandoned, data[:500])  # the client gave up half-way (or crashed)
    fresh = door_api.start(key, data)
    assert fresh["upload_id"] != abandoned["upload_id"]
    with pytest.raises(ftplib.error_perm):  # the superseded credentials are revoked
        door_api.login(abandoned)
    assert not (door_api.api.storage_root / "staging" / abandoned["upload_id"]).exists()
    door_api.store(fresh, data)
    assert door_api.commit(fresh).status_code == 200
    gone = door_api.commit(abandoned)
    assert gone.status_code == 410
    assert "superseded" in gone.json()["detail"]
