"""Crash safety of a real ``jp-primary serve``: SIGKILL in the middle of an upload and of a
commit, restart on the same home and database, and check what is visible afterwards.

What must hold after every kill: no partial file is visible (not listed, not downloadable, no
partial bytes at a final key), every acknowledged commit is intact (same sha256), a commit is all
or nothing (a file row always with all its derived values, never one without the other), an
interrupted upload or commit can be retried to success, what a kill leaves behind is only ever an
orphan ``jp-primary gc`` removes, and acknowledged registrations and tags are all there. Each test
runs on SQLite and on PostgreSQL (the ``database_url`` fixture).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from jp_primary.attributes.names import JP_ISB
from jp_primary.auth.identity import Role
from jp_primary.client.calls import key_of
from tests.crash.probes import write_probe
from tests.crash.server import ServiceProcess
from tests.crash.workload import (
    Archive,
    MiB,
    StoredFile,
    disk_files,
    final_path,
    pattern_chunks,
    pattern_sha256,
    sandbox_archive,
    sandbox_entry_names,
)
from tests.helpers import ALICE, LB_HOST, job_body, new_jobid, registered_key

pytestmark = pytest.mark.slow

BIG = 200 * MiB
SEED = 20_260_124
ENTRIES = 8_000  # 16,000 derived values: a commit long enough to be interrupted in each phase
KILL_POINTS: tuple[str | float, ...] = (
    "published",  # bytes at their final key, no file row yet
    "in-transaction",  # inside the transaction inserting the file row and its values
    "after-transaction",  # committed in the database, the answer not yet sent
    0.5,  # fractions of a measured commit: wherever they land
    0.9,
)
WAIT = 30.0


@pytest.fixture
def service(tmp_path: Path, database_url: str) -> Iterator[ServiceProcess]:
    # An hour to commit: the retries below come long after the uploads started.
    with ServiceProcess(tmp_path / "home", database_url, JP_UPLOAD_DEADLINE="3600") as running:
        yield running


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.002)


def staged_bytes(staging: Path) -> int:
    """Size of the temporary file an upload in progress is being written to (0: none yet)."""
    return sum(p.stat().st_size for p in staging.glob(".tmp-*")) if staging.is_dir() else 0


# -- a large upload killed mid-stream --------------------------------------------------------


def test_upload_killed_mid_stream_leaves_nothing_visible_and_can_be_retried(
    service: ServiceProcess,
) -> None:
    archive = Archive(service)
    key = archive.register()
    stored = [archive.store(key, "osb", f"before-{i}", os.urandom(100_000 * i)) for i in (1, 2, 3)]
    digest = pattern_sha256(SEED, BIG)
    upload_id = archive.start_upload(key, "osb", "big", size=BIG, sha256=digest)
    staging = service.storage_root / "staging" / upload_id
    at_kill: dict[str, int] = {}

    def stream_killed_after_a_third() -> Iterator[bytes]:
        sent = 0
        for piece in pattern_chunks(SEED, BIG):
            if sent >= BIG // 3 and not at_kill:
                # The service has written a good part of what we sent: it dies mid-write.
                wait_until(lambda: staged_bytes(staging) >= BIG // 4, "a quarter is staged")
                at_kill.update(sent=sent, staged=staged_bytes(staging))
                service.kill()
            yield piece
            sent += len(piece)

    with pytest.raises(httpx.TransportError):
        archive.send(upload_id, stream_killed_after_a_third())
    assert BIG // 4 <= at_kill["staged"] <= at_kill["sent"] < BIG
    service.start()

    names = {f["name"] for f in archive.listed(key)}
    assert names == {"before-1", "before-2", "before-3"}
    assert archive.download_sha256(key, "osb", "big") == (404, None)
    archive.assert_intact(stored)
    root = service.storage_root
    published = {p for p in disk_files(root) if p.is_relative_to(root / "files")}
    assert published == {final_path(root, f.job_key, f.file_class, f.name) for f in stored}
    assert all(p.is_relative_to(root / "staging") for p in disk_files(root) - published)

    assert archive.send(upload_id, pattern_chunks(SEED, BIG)).status_code == 204
    committed = archive.commit(upload_id)
    assert committed.status_code == 200, committed.text
    assert (committed.json()["sha256"], committed.json()["size"]) == (digest, BIG)
    stored.append(StoredFile(key, "osb", "big", digest, BIG))
    archive.assert_intact(stored)

    # The commit removed what the kill left in the upload's staging directory, and the
    # directory with it; gc finds nothing more and touches nothing committed.
    leftovers = disk_files(root) - published - {final_path(root, key, "osb", "big")}
    assert leftovers == set()
    assert not staging.exists()
    collected = service.run_cli("gc", "--delete", "--min-age", "0")
    assert collected.returncode == 0, collected.stderr
    assert disk_files(root) == {final_path(root, f.job_key, f.file_class, f.name) for f in stored}
    archive.assert_intact(stored)


def test_defect_5_one_shot_put_killed_mid_body_can_simply_be_retried(
    service: ServiceProcess,
) -> None:
    archive = Archive(service)
    key = archive.register()
    size = 64 * MiB
    digest = pattern_sha256(SEED, size)
    staging = service.storage_root / "staging"
    url = f"/v1/jobs/{key}/files/osb"
    at_kill: dict[str, int] = {}

    def stream_killed_midway() -> Iterator[bytes]:
        sent = 0
        for piece in pattern_chunks(SEED, size):
            if sent >= size // 2 and not at_kill:
                wait_until(
                    lambda: sum(staged_bytes(d) for d in staging.glob("*")) >= size // 4,
                    "a quarter is staged",
                )
                at_kill["sent"] = sent
                service.kill()
            yield piece
            sent += len(piece)

    headers = archive.headers | {"X-Content-SHA256": digest}
    with pytest.raises(httpx.TransportError), archive.client() as client:
        client.put(url, params={"name": "big"}, content=stream_killed_midway(), headers=headers)
    assert at_kill
    service.start()
    killed = [p for p in staging.glob("*") if p.is_dir()]
    assert len(killed) == 1, "the killed PUT left its upload's staging directory"

    # The sender never learnt an upload id: it sends the same PUT again, and that is enough.
    with archive.client() as client:
        again = client.put(
            url, params={"name": "big"}, content=pattern_chunks(SEED, size), headers=headers
        )
    assert again.status_code == 201, again.text
    assert (again.json()["sha256"], again.json()["size"]) == (digest, size)
    archive.assert_intact([StoredFile(key, "osb", "big", digest, size)])
    # The superseded upload's half-written file went with it; nothing is left in staging.
    assert list(staging.iterdir()) == []
    assert disk_files(service.storage_root) == {final_path(service.storage_root, key, "osb", "big")}


# -- a long commit killed at several points --------------------------------------------------


def commit_and_kill(
    service: ServiceProcess, archive: Archive, upload_id: str, kill_when: Callable[[], None]
) -> httpx.Response | None:
    """Send the commit, SIGKILL the service once ``kill_when`` returns; the answer if any."""
    with ThreadPoolExecutor(max_workers=1) as pool, archive.client() as client:
        answer = pool.submit(archive.commit, upload_id, client)
        kill_when()
        service.kill()
        try:
            return answer.result(timeout=WAIT)
        except httpx.TransportError:
            return None


def committed_completely(archive: Archive, key: str, name: str, sha256: str) -> bool:
    """Whether the job's one sandbox is committed; fails on anything between all and nothing."""
    listed = archive.listed(key)
    values = archive.file_values(key)
    if not listed:
        assert values == [], "derived values without their file"
        assert archive.download_sha256(key, "isb", name) == (404, None)
        return False
    assert [(f["class"], f["name"], f["sha256"]) for f in listed] == [("isb", name, sha256)]
    assert archive.download_sha256(key, "isb", name) == (200, sha256)
    filenames = sorted(str(v["value"]) for v in values if v["name"] == f"{JP_ISB}:filename")
    assert filenames == sandbox_entry_names(ENTRIES), "a file without all its derived values"
    assert len(values) == 2 * ENTRIES
    assert {v["origin_detail"] for v in values} == {f"isb {name}"}
    return True


def kill_trigger(
    point: str | float, location: Path, database_url: str, duration: float
) -> Callable[[], None]:
    """When to kill a commit: at a fraction of a commit's duration or at one of its phases."""
    if isinstance(point, float):
        return lambda: time.sleep(point * duration)

    def at_phase() -> None:
        wait_until(location.exists, "the commit published the bytes")  # extraction under way
        if point == "published":
            return
        with write_probe(database_url) as writing:
            wait_until(writing, "the commit's transaction began")
            if point == "after-transaction":  # committed, the answer not sent yet
                wait_until(lambda: not writing(), "the commit's transaction ended")

    return at_phase


def test_commit_killed_at_any_point_is_all_or_nothing_and_can_be_retried(
    service: ServiceProcess,
) -> None:
    archive = Archive(service)
    data = sandbox_archive(ENTRIES)
    sha256 = hashlib.sha256(data).hexdigest()

    def uploaded(name: str) -> tuple[str, str]:
        key = archive.register()
        upload_id = archive.start_upload(key, "isb", name, size=len(data), sha256=sha256)
        assert archive.send(upload_id, data).status_code == 204
        return key, upload_id

    key, upload_id = uploaded("calibration")
    began = time.monotonic()
    assert archive.commit(upload_id).status_code == 200
    duration = time.monotonic() - began  # only chooses kill points; nothing asserts on it
    assert committed_completely(archive, key, "calibration", sha256)
    stored = [StoredFile(key, "isb", "calibration", sha256, len(data))]

    outcomes: list[tuple[str | float, bool, bool]] = []
    for point in KILL_POINTS:
        name = f"killed-at-{point}"
        key, upload_id = uploaded(name)
        location = final_path(service.storage_root, key, "isb", name)
        trigger = kill_trigger(point, location, service.database_url, duration)
        answer = commit_and_kill(service, archive, upload_id, trigger)
        assert answer is None or answer.status_code == 200, answer.text
        service.start()
        visible = committed_completely(archive, key, name, sha256)
        assert visible or answer is None, "an acknowledged commit was lost"
        first_commit = archive.listed(key)[0]["committed_at"] if visible else None

        retried = archive.commit(upload_id)
        assert retried.status_code == 200, retried.text
        assert retried.json()["sha256"] == sha256
        assert committed_completely(archive, key, name, sha256)
        if first_commit is not None:
            assert retried.json()["committed_at"] == first_commit  # the same file, not a new one
        stored.append(StoredFile(key, "isb", name, sha256, len(data)))
        archive.assert_intact(stored)
        outcomes.append((point, answer is None, visible))

    # (kill point, the client got no answer, the file was visible after the restart)
    assert any(unanswered for _, unanswered, _ in outcomes), f"no kill hit a commit: {outcomes}"


# -- a bulk request killed at several points -------------------------------------------------


def send_bulk(
    service: ServiceProcess, files: list[tuple[str, str, str, bytes]], client: httpx.Client
) -> httpx.Response:
    """``POST /v1/files/bulk`` by the trusted L&B host: (jobid, class, name, bytes) each,
    registering each unknown job for ALICE."""
    manifest = [
        {
            "jobid": jobid,
            "class": file_class,
            "name": name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "register": True,
            "register_owner": ALICE,
        }
        for jobid, file_class, name, data in files
    ]
    parts: list[tuple[str, Any]] = [("manifest", (None, json.dumps({"files": manifest})))]
    parts += [("file", (f"f{i}", data)) for i, (_, _, _, data) in enumerate(files)]
    return client.post("/v1/files/bulk", files=parts, headers=service.auth(LB_HOST, Role.TRUSTED))


def test_bulk_request_killed_at_any_point_is_all_or_nothing_per_file_and_can_be_resent(
    service: ServiceProcess,
) -> None:
    archive = Archive(service)
    data = sandbox_archive(ENTRIES)
    sha256 = hashlib.sha256(data).hexdigest()

    def request(tag: str) -> list[tuple[str, str, str, bytes]]:
        return [
            (new_jobid(), "isb", f"bulk-{tag}", data),
            (new_jobid(), "osb", f"small-{tag}", f"small {tag}".encode()),
        ]

    def visible(jobid: str, file_class: str, name: str, body: bytes) -> bool:
        key = key_of(jobid)
        with archive.client() as client:
            if client.get(f"/v1/jobs/{key}", headers=archive.headers).status_code == 404:
                return False  # the registration did not commit either
        if file_class == "isb":
            return committed_completely(archive, key, name, sha256)
        listed = [(f["name"], f["sha256"]) for f in archive.listed(key)]
        assert listed in ([], [(name, hashlib.sha256(body).hexdigest())])
        return bool(listed)

    calibration = request("calibration")
    began = time.monotonic()
    with archive.client() as client:
        answer = send_bulk(service, calibration, client)
    duration = time.monotonic() - began  # only chooses kill points
    assert [r["status"] for r in answer.json()["results"]] == [201, 201], answer.text

    outcomes = []
    for point in ("published", "in-transaction", 0.5):
        files = request(str(point))
        location = final_path(service.storage_root, key_of(files[0][0]), "isb", files[0][2])
        trigger = kill_trigger(point, location, service.database_url, duration)
        with ThreadPoolExecutor(max_workers=1) as pool, archive.client() as client:
            sent = pool.submit(send_bulk, service, files, client)
            trigger()
            service.kill()
            try:
                killed_answer: httpx.Response | None = sent.result(timeout=WAIT)
            except httpx.TransportError:
                killed_answer = None
        service.start()
        before = [visible(*f) for f in files]
        if killed_answer is not None:
            assert all(r["status"] == 201 for r in killed_answer.json()["results"])
            assert all(before), "an acknowledged file was lost"
        # The same request again completes it; what the first attempt stored answers 200.
        with archive.client() as client:
            again = send_bulk(service, files, client)
        assert again.status_code == 200, again.text
        statuses = [r["status"] for r in again.json()["results"]]
        assert statuses == [200 if seen else 201 for seen in before], (point, before, statuses)
        assert all(visible(*f) for f in files)
        outcomes.append((point, killed_answer is None, before))
    assert any(unanswered for _, unanswered, _ in outcomes), f"no kill hit a request: {outcomes}"


# -- registrations and tags written while the service is killed ------------------------------


def test_acknowledged_registrations_and_tags_survive_a_kill(service: ServiceProcess) -> None:
    archive = Archive(service)
    registered: dict[str, str] = {}  # key -> jobid, each acknowledged with 201
    tagged: dict[str, list[tuple[str, str, int]]] = {}  # key -> acknowledged (name, value, seq)
    killed = threading.Event()

    def write_until_killed() -> None:
        with archive.client() as client:
            while True:
                try:
                    jobid = new_jobid()
                    job = client.post("/v1/jobs", json=job_body(jobid), headers=archive.headers)
                    key = registered_key(job)
                    registered[key] = jobid
                    tags = [{"name": f"crash{i}", "value": f"{key}/{i}"} for i in range(3)]
                    url = f"/v1/jobs/{key}/tags"
                    answer = client.post(url, json={"tags": tags}, headers=archive.headers)
                    assert answer.status_code == 201, answer.text
                    tagged[key] = [(t["name"], t["value"], t["seq"]) for t in answer.json()]
                except httpx.TransportError:
                    assert killed.is_set(), "the service failed before it was killed"
                    return

    with ThreadPoolExecutor(max_workers=1) as pool:
        writer = pool.submit(write_until_killed)
        wait_until(lambda: len(tagged) >= 40 or writer.done(), "40 jobs are tagged")
        killed.set()
        service.kill()
        writer.result(timeout=WAIT)
    service.start()

    assert len(tagged) >= 40
    with archive.client() as client:
        for key, jobid in registered.items():
            job = client.get(f"/v1/jobs/{key}", headers=archive.headers)
            assert job.status_code == 200, (key, job.text)
            assert job.json()["jobid"] == jobid
        for key, acknowledged in tagged.items():
            tags = client.get(f"/v1/jobs/{key}/tags", headers=archive.headers).json()
            present = {(t["name"], t["value"], t["seq"]) for t in tags}
            assert set(acknowledged) <= present, key
