"""The FTP upload door: one-time credentials store one file at one path, and nothing else."""

from __future__ import annotations

import ftplib
import hashlib
import io
import os
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from jp_primary.backends.filesystem import FilesystemBackend, FilesystemOptions
from jp_primary.door.grants import (
    DoorGrant,
    DoorGrants,
    InMemoryDoorGrants,
    door_upload,
    issue_door_credentials,
)
from jp_primary.door.server import DoorTLS, FTPDoor

TARGET = "staging/up-1/data.bin"


def soon(minutes: int = 10) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


@pytest.fixture
def grants() -> InMemoryDoorGrants:
    return InMemoryDoorGrants()


@pytest.fixture(params=["plain", "tls"])
def door(
    request: pytest.FixtureRequest, tmp_path: Path, grants: InMemoryDoorGrants, tls_pem: Path
) -> Iterator[FTPDoor]:
    received: list[tuple[DoorGrant, Path]] = []
    server = FTPDoor(
        tmp_path / "root",
        grants,
        tls=DoorTLS(tls_pem) if request.param == "tls" else None,
        auth_failed_timeout=0,
        on_upload=lambda grant, path: received.append((grant, path)),
    )
    server.received = received  # type: ignore[attr-defined]
    server.tls_pem = tls_pem if request.param == "tls" else None  # type: ignore[attr-defined]
    server.start()
    yield server
    server.stop()


def connect(door: FTPDoor, user: str, password: str) -> ftplib.FTP:
    pem = door.tls_pem  # type: ignore[attr-defined]
    client: ftplib.FTP
    if pem:
        context = ssl.create_default_context(cafile=pem)
        client = ftplib.FTP_TLS(context=context, timeout=10)  # noqa: S321
    else:
        client = ftplib.FTP(timeout=10)  # noqa: S321 (plain FTP is one of the door's modes)
    client.connect("127.0.0.1", door.port)
    client.login(user, password)
    if isinstance(client, ftplib.FTP_TLS):
        client.prot_p()
    return client


def store(client: ftplib.FTP, name: str, data: bytes) -> None:
    client.storbinary(f"STOR {name}", io.BytesIO(data))


def test_upload_lands_at_the_bound_path(door: FTPDoor, grants: DoorGrants) -> None:
    data = os.urandom(300_000)
    scheme = "ftps" if door.tls_pem else "ftp"  # type: ignore[attr-defined]
    upload = door_upload(grants, f"{scheme}://127.0.0.1:{door.port}", "up-1", TARGET, soon())
    url = urlsplit(upload.url)
    assert upload.method == "ftp"
    assert url.scheme == scheme
    assert url.path == "/data.bin"
    with connect(door, unquote(url.username or ""), unquote(url.password or "")) as client:
        store(client, "data.bin", data)
    assert (door.root / TARGET).read_bytes() == data
    assert os.listdir((door.root / TARGET).parent) == ["data.bin"]  # no temporary left
    [(grant, path)] = door.received  # type: ignore[attr-defined]
    assert (grant.upload_id, path) == ("up-1", door.root / TARGET)


def test_door_writes_where_the_filesystem_backend_reads(tmp_path: Path, tls_pem: Path) -> None:
    grants = InMemoryDoorGrants()
    backend = FilesystemBackend(FilesystemOptions(root=tmp_path / "store"))
    server = FTPDoor(backend.root, grants, auth_failed_timeout=0)
    server.start()
    try:
        user, password = issue_door_credentials(grants, "up-2", "staging/up-2/lb", soon())
        with ftplib.FTP() as client:  # noqa: S321
            client.connect("127.0.0.1", server.port, timeout=10)
            client.login(user, password)
            store(client, "lb", b"DG.JOBID=x\n")
    finally:
        server.stop()
    assert backend.path("staging/up-2/lb").read_bytes() == b"DG.JOBID=x\n"


def test_password_is_kept_only_as_a_hash(grants: InMemoryDoorGrants) -> None:
    user, password = issue_door_credentials(grants, "up-1", TARGET, soon())
    grant = grants.get(user)
    assert grant is not None
    assert password not in repr(grant)
    assert grant.password_sha256 == hashlib.sha256(password.encode()).hexdigest()
    assert grant.password_matches(password)
    assert not grant.password_matches(password + "x")


def test_grant_is_consumed_once(grants: InMemoryDoorGrants) -> None:
    user, _ = issue_door_credentials(grants, "up-1", TARGET, soon())
    now = datetime.now(UTC)
    assert grants.consume(user, now)
    assert not grants.consume(user, now)
    late_user, _ = issue_door_credentials(grants, "up-3", TARGET, soon())
    assert not grants.consume(late_user, soon(20))  # past its deadline
    assert not grants.consume("jpup-unknown", now)


@pytest.mark.parametrize("target", ["/abs/path", "../escape", "a/../../b", "a//b", ""])
def test_targets_outside_the_root_are_refused(grants: InMemoryDoorGrants, target: str) -> None:
    with pytest.raises(ValueError, match="target"):
        issue_door_credentials(grants, "up-1", target, soon())


def refused(action: object) -> None:
    assert callable(action)
    with pytest.raises(ftplib.error_perm, match="^5"):
        action()


def test_everything_but_the_one_store_is_refused(door: FTPDoor, grants: DoorGrants) -> None:
    other = door.root / "staging" / "up-1" / "other.bin"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"someone else's bytes")
    (other.parent / "sub").mkdir()
    user, password = issue_door_credentials(grants, "up-1", TARGET, soon())
    with connect(door, user, password) as client:
        refused(lambda: client.retrbinary("RETR other.bin", lambda _b: None))
        refused(lambda: client.nlst())
        refused(lambda: client.dir())
        refused(lambda: list(client.mlsd()))
        refused(lambda: client.size("other.bin"))
        refused(lambda: client.delete("other.bin"))
        refused(lambda: client.rename("other.bin", "data.bin"))
        refused(lambda: client.mkd("sub"))
        refused(lambda: client.cwd("sub"))
        client.cwd("/..")  # the login directory is the root of what the user sees
        assert client.pwd() == "/"
        refused(lambda: store(client, "other-name.bin", b"x"))
        refused(lambda: client.storbinary("APPE data.bin", io.BytesIO(b"x")))
        refused(lambda: client.storbinary("STOR data.bin", io.BytesIO(b"x"), rest=1))
        store(client, "data.bin", b"the upload")
        refused(lambda: store(client, "data.bin", b"a second write"))
        refused(lambda: client.retrbinary("RETR data.bin", lambda _b: None))
    assert (door.root / TARGET).read_bytes() == b"the upload"
    assert other.read_bytes() == b"someone else's bytes"


def test_used_expired_and_wrong_credentials_cannot_log_in(
    door: FTPDoor, grants: InMemoryDoorGrants
) -> None:
    user, password = issue_door_credentials(grants, "up-1", TARGET, soon())
    with pytest.raises(ftplib.error_perm, match="^530"):
        connect(door, user, password + "x")
    with connect(door, user, password) as client:
        store(client, "data.bin", b"once")
    with pytest.raises(ftplib.error_perm, match="^530"):
        connect(door, user, password)  # used up

    late_user, late_password = issue_door_credentials(grants, "up-2", TARGET, soon())
    grant = grants.get(late_user)
    assert grant is not None
    grants.add(replace(grant, deadline=datetime.now(UTC) - timedelta(seconds=1)))
    with pytest.raises(ftplib.error_perm, match="^530"):
        connect(door, late_user, late_password)


def test_deadline_passing_during_a_session_stops_the_store(
    door: FTPDoor, grants: InMemoryDoorGrants
) -> None:
    user, password = issue_door_credentials(grants, "up-1", TARGET, soon())
    with connect(door, user, password) as client:
        grant = grants.get(user)
        assert grant is not None
        grants.add(replace(grant, deadline=datetime.now(UTC) - timedelta(seconds=1)))
        refused(lambda: store(client, "data.bin", b"too late"))
    assert not (door.root / TARGET).exists()


def test_aborted_transfer_leaves_no_file_and_uses_the_grant(
    door: FTPDoor, grants: InMemoryDoorGrants
) -> None:
    user, password = issue_door_credentials(grants, "up-1", TARGET, soon())
    client = connect(door, user, password)
    data = client.transfercmd("STOR data.bin")
    data.sendall(b"x" * 100_000)
    home = (door.root / TARGET).parent
    assert not (door.root / TARGET).exists()  # bytes so far sit under a temporary name
    assert client.sock is not None
    # The uploader's control connection drops while the data connection is still open: that is
    # an interrupted transfer. (Closing the data connection first would be a complete upload:
    # in FTP stream mode the end of the data connection is the end of the file.)
    client.sock.shutdown(socket.SHUT_RDWR)
    deadline = datetime.now(UTC) + timedelta(seconds=10)
    while os.listdir(home) and datetime.now(UTC) < deadline:
        time.sleep(0.02)  # the door notices the lost connection asynchronously
    data.close()
    client.close()
    assert os.listdir(home) == []  # neither the upload nor its temporary
    with pytest.raises(ftplib.error_perm, match="^530"):
        connect(door, user, password)
