"""The client library against a live ``jp-primary serve`` (a subprocess), route by route, on
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from jp_primary.client import (
    AsyncClient,
    BulkUpload,
    Client,
    Conflict,
    Credentials,
    DigestMismatch,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from jp_primary.client.store import store_file
from jp_primary.client.transfer import Partial

from .support import LB_IDENTITY, USER, Live, new_jobid, write_dump

pytestmark = pytest.mark.slow
BOB = "/DC=org/DC=example/O=JP Test/CN=Bob Jones/CN=67890"
LB_CLASS_VALUE = "http://egee.cesnet.cz/en/Schema/LB/Attributes:status"


@pytest.fixture(scope="module")
def alice(live: Live) -> Iterator[Client]:
    with live.client(USER) as client:
        yield client


@pytest.fixture(scope="module")
def lb(live: Live) -> Iterator[Client]:
    with live.client(LB_IDENTITY, "trusted") as client:
        yield client


def test_register_and_look_up(alice: Client, lb: Client) -> None:
    jobid = new_jobid()
    first = alice.register(jobid)
    assert first.created
    assert first.job.owner == USER
    assert first.job.key == jobid.rsplit("/", 1)[1]
    again = alice.register(jobid)
    assert not again.created
    assert again.job.registered_at == first.job.registered_at
    lb_job = new_jobid()
    lb.register(lb_job, USER)
    with pytest.raises(Conflict):
        lb.register(lb_job, BOB)
    assert alice.job(jobid).jobid == jobid  # by full jobid
    assert alice.job(first.job.key).owner == USER  # by key
    with pytest.raises(NotFound):
        alice.job(new_jobid())
    with pytest.raises(InvalidInput):
        alice.register("not a jobid")


def test_bulk_registration_reports_each_job(lb: Client) -> None:
    good, dup = new_jobid(), new_jobid()
    lb.register(dup, USER)
    results = lb.register_bulk([(good, USER), (dup, BOB), ("nonsense", USER)])
    assert [r.status for r in results] == [201, 409, 422]
    assert results[0].job is not None
    assert results[0].job.owner == USER


def test_identity_and_authentication(live: Live, alice: Client) -> None:
    me = alice.whoami()
    assert me.subject == USER
    assert me.authenticated_by == "token"
    with Client(live.url, credentials=Credentials()) as anonymous:
        with pytest.raises(Unauthenticated):
            anonymous.whoami()
        assert anonymous.healthz()["status"] == "ok"
    with live.client(BOB) as bob, pytest.raises((Forbidden, NotFound)):
        bob.files(alice.register(new_jobid()).job.key)


def test_one_shot_upload_of_a_dump_extracts_attributes(alice: Client, tmp_path: Path) -> None:
    jobid = new_jobid()
    alice.register(jobid)
    dump = write_dump(tmp_path, jobid)
    stored = alice.put_file(jobid, "lb", dump)
    assert stored.file_class == "lb"
    assert stored.size == dump.stat().st_size
    assert stored.sha256 == hashlib.sha256(dump.read_bytes()).hexdigest()
    assert any(v.name == LB_CLASS_VALUE for v in stored.extraction.values)
    values = alice.attributes(jobid, [LB_CLASS_VALUE]).values
    assert [v.value for v in values] == ["Done"] or values[-1].value == "Done"
    assert "jobRecord" in alice.record(jobid)
    assert alice.file_errors(jobid, "lb")["error_count"] == 0
    with pytest.raises(Conflict):
        alice.put_file(jobid, "lb", dump)
    with pytest.raises(DigestMismatch):
        alice.put_file(jobid, "osb", b"abc", sha256="0" * 64)


def test_two_phase_upload_download_range_and_resume(alice: Client, tmp_path: Path) -> None:
    jobid = new_jobid()
    alice.register(jobid)
    data = os.urandom(3 * (1 << 20) + 123)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    moved: list[int] = []
    stored = alice.upload(jobid, "osb", source, name="big", two_phase=True, progress=moved.append)
    assert stored.size == len(data)
    assert sum(moved) == len(data)
    assert [(f.file_class, f.name) for f in alice.files(jobid)] == [("osb", "big")]
    assert alice.read(jobid, "osb", "big", byte_range="10-19") == data[10:20]

    dest = tmp_path / "copy.bin"
    partial = Partial(dest)
    partial.part.write_bytes(data[:1000])  # an interrupted earlier download
    partial.tag_file.write_text(f'"{stored.sha256}"')
    assert alice.download(jobid, "osb", dest, name="big").read_bytes() == data
    assert not partial.part.exists()
    assert not partial.tag_file.exists()

    partial.part.write_bytes(b"X" * 1000)  # a .part of another version: If-Range restarts it
    partial.tag_file.write_text('"' + "0" * 64 + '"')
    assert alice.download(jobid, "osb", dest, name="big").read_bytes() == data


def test_abort_and_class_errors(alice: Client) -> None:
    jobid = new_jobid()
    alice.register(jobid)
    ticket = alice.start_upload(jobid, "osb", "x", size=3)
    assert ticket.method == "api"
    alice.abort_upload(ticket.upload_id)
    with pytest.raises(InvalidInput, match="unknown file class"):
        alice.start_upload(jobid, "nosuch")


def test_tags_and_attributes(alice: Client) -> None:
    jobid = new_jobid()
    alice.register(jobid)
    stored = alice.add_tags(jobid, [("color", "green"), ("size", "3")])
    assert [t.value for t in stored] == ["green", "3"]
    assert [t.value for t in alice.tags(jobid)] == ["green", "3"]
    everything = alice.attributes(jobid)
    assert any(v.value == "green" for v in everything.values)


def test_async_client_does_the_same(live: Live, tmp_path: Path) -> None:
    token = live.token(USER)

    async def go() -> tuple[str, bytes, list[str]]:
        async with AsyncClient(live.url, credentials=Credentials(token=token)) as client:
            jobid = new_jobid()
            await client.register(jobid)
            await client.upload(jobid, "osb", b"hello world", name="a")
            await client.upload(jobid, "isb", b"two phase", two_phase=True)
            await client.add_tags(jobid, [("k", "v")])
            got = await client.read(jobid, "osb", "a")
            saved = await client.download(jobid, "isb", tmp_path / "isb.bin")
            names = sorted(f.file_class for f in await client.files(jobid))
            me = await client.whoami()
            return me.subject, got + saved.read_bytes(), names

    subject, data, names = asyncio.run(go())
    assert subject == USER
    assert data == b"hello worldtwo phase"
    assert names == ["isb", "osb"]


@pytest.mark.parametrize("owner", [USER, "/DC=cz/O=Příklad/CN=Zdeněk Novák", None])
def test_store_file_registers_an_unknown_job_for_its_owner(
    lb: Client, tmp_path: Path, owner: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ASCII owners ride on the PUT itself (X-Register-Jobid); others, which a header cannot
    # carry, are registered by a separate call after the 404.
    jobid = new_jobid()
    dump = tmp_path / "dump"
    dump.write_bytes(os.urandom(300))
    calls: list[str] = []
    register = lb.register
    monkeypatch.setattr(
        lb, "register", lambda *a, **kw: calls.append("register") or register(*a, **kw)
    )
    stored = store_file(lb, jobid, "lb", dump, register_owner=lambda: owner)
    assert calls == ([] if owner is None or owner.isascii() else ["register"])
    assert stored.registered
    assert stored.created
    assert lb.job(jobid).owner == (owner or LB_IDENTITY)
    again = store_file(lb, jobid, "lb", dump, register_owner=lambda: owner)
    assert not again.registered
    assert not again.created
    assert [f.sha256 for f in lb.files(jobid)] == [stored.sha256]


def test_bulk_upload_answers_per_file(live: Live, lb: Client, tmp_path: Path) -> None:
    fresh, known = new_jobid(), new_jobid()
    lb.register(known, USER)
    lb.put_file(known, "osb", b"there", name="taken")
    lb.put_file(known, "osb", b"kept", name="kept")
    dump = write_dump(tmp_path, fresh)
    items = [
        BulkUpload(fresh, "lb", dump, register=True, owner="/DC=cz/O=Příklad/CN=Zdeněk Novák"),
        BulkUpload(known, "osb", b"there", name="taken"),
        BulkUpload(known, "osb", b"other", name="kept"),
        BulkUpload(new_jobid(), "osb", b"nobody"),
    ]
    results = lb.put_files_bulk(items)
    assert [(r.index, r.status) for r in results] == [(0, 201), (1, 200), (2, 409), (3, 404)]
    assert results[0].registered is True
    assert results[0].file is not None
    assert any(v.name == LB_CLASS_VALUE for v in results[0].file.extraction.values)
    assert [r.stored for r in results] == [True, True, False, False]
    assert results[2].error == "Conflict"
    assert lb.job(fresh).owner == "/DC=cz/O=Příklad/CN=Zdeněk Novák"

    token = live.token(LB_IDENTITY, "trusted")

    async def again() -> list[int]:
        async with AsyncClient(live.url, credentials=Credentials(token=token)) as client:
            return [r.status for r in await client.put_files_bulk(items)]

    assert asyncio.run(again()) == [200, 200, 409, 404]
    with live.client(USER) as alice, pytest.raises(Forbidden):
        alice.put_files_bulk(items[:1])
