"""Issue 14, defects 3, 4, 8 (/record), 12 and 16 (reextract): whatever a committed file holds,
extraction stays bounded, its results are storable on both databases, and the JobRecord is
derived once at commit."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import tarfile
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import create_engine, text

from jp_primary.attributes import names
from jp_primary.auth.identity import Role
from jp_primary.plugins.base import DerivedValue, ExtractContext, Extraction
from jp_primary.plugins.registry import PluginRegistry
from jp_primary.testing.lbdumps import generate_job
from tests.helpers import ALICE, LB_HOST, Api, new_jobid, register_job

RANDOM_BYTES = 32 * 1024 * 1024


def register(api: Api) -> tuple[str, str]:
    """A job registered by the L&B host for Alice: its jobid (dumps name it) and its key."""
    jobid = new_jobid()
    return jobid, register_job(api, jobid=jobid, lb=True)


def put(api: Api, key: str, file_class: str, body: bytes, name: str = "") -> Any:
    response = api.client.put(
        f"/v1/jobs/{key}/files/{file_class}",
        params={"name": name},
        content=body,
        headers=api.auth(LB_HOST, Role.TRUSTED),
    )
    assert response.status_code == 201, response.text
    return response


def commit_traced(api: Api, key: str, file_class: str, body: bytes) -> tuple[Any, int]:
    """Commit ``body`` through the two-phase upload; the peak Python memory of the commit."""
    trusted = api.auth(LB_HOST, Role.TRUSTED)
    started = api.client.post(
        f"/v1/jobs/{key}/uploads", json={"class": file_class}, headers=trusted
    ).json()
    sent = api.client.put(f"/v1/uploads/{started['upload_id']}", content=body, headers=trusted)
    assert sent.status_code == 204, sent.text
    tracemalloc.start()
    try:
        response = api.client.post(f"/v1/uploads/{started['upload_id']}/commit", headers=trusted)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 200, response.text
    return response, peak


def test_defect_3_random_bytes_as_lb_stay_bounded(api: Api) -> None:
    jobid, key = register(api)
    # 52 MB: one real event (so the file is read to its end), random bytes, then one 20 MB
    # "line" without a newline; none of it may be held whole.
    event = generate_job(random.Random(1), "done", jobid=jobid)[0].encode() + b"\n"
    body = event + random.Random(3).randbytes(RANDOM_BYTES) + b"Z" * (20 * 1024 * 1024)
    response, peak = commit_traced(api, key, "lb", body)
    assert peak < 64 * 1024 * 1024, f"the commit held {peak} bytes"
    assert len(response.content) < 256 * 1024
    extraction = response.json()["extraction"]
    assert len(extraction["errors"]) == 100  # JP_MAX_EXTRACTION_PROBLEMS default
    assert extraction["error_count"] > 100_000
    assert all(len(e["message"]) <= 1000 for e in extraction["errors"])

    job = api.client.get(f"/v1/jobs/{key}", headers=api.auth(ALICE))
    assert len(job.content) < 16 * 1024
    (listed,) = job.json()["files"]
    assert len(listed["extraction_errors"]) == 5
    assert listed["extraction_error_count"] == extraction["error_count"]
    listing = api.client.get(f"/v1/jobs/{key}/files", headers=api.auth(ALICE))
    assert len(listing.content) < 16 * 1024

    errors = api.client.get(f"/v1/jobs/{key}/files/lb/errors", headers=api.auth(ALICE)).json()
    assert errors["errors"] == extraction["errors"]
    assert errors["error_count"] == extraction["error_count"]


def test_defect_3_every_plugin_reads_random_bytes_in_bounded_memory(api: Api) -> None:
    _, key = register(api)
    body = random.Random(5).randbytes(48 * 1024 * 1024)
    for file_class in ("lb", "osb", "isb", "jdl", "condor-log"):
        response, peak = commit_traced(api, key, file_class, body)
        assert peak < 48 * 1024 * 1024, f"{file_class}: the commit held {peak} bytes"
        extraction = response.json()["extraction"]
        assert 1 <= len(extraction["errors"]) <= 100
        assert len(response.content) < 256 * 1024
    # A file that is no L&B dump says so first, and is not read to its end.
    errors = api.client.get(f"/v1/jobs/{key}/files/lb/errors", headers=api.auth(ALICE)).json()
    assert errors["errors"][0]["message"] == "the file holds no L&B event"
    assert errors["errors"][1]["message"].endswith("the rest is not read")
    assert errors["error_count"] == 1002


def test_defect_3_a_huge_tar_extended_header_is_not_read(api: Api) -> None:
    _, key = register(api)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("x")
        info.pax_headers = {"comment": "c" * (40 * 1024 * 1024)}
        archive.addfile(info, io.BytesIO(b""))
    response, peak = commit_traced(api, key, "osb", buffer.getvalue())
    assert peak < 16 * 1024 * 1024, f"the commit held {peak} bytes"
    (problem,) = response.json()["extraction"]["errors"]
    assert "extended header" in problem["message"]


def test_defect_3_the_problem_cap_is_configurable(make_api: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("JP_MAX_EXTRACTION_PROBLEMS", "7")
    api = make_api()
    _, key = register(api)
    extraction = put(api, key, "lb", b"garbage line\n" * 50).json()["extraction"]
    assert len(extraction["errors"]) == 7
    assert extraction["error_count"] == 51  # 50 unparsable lines + "no L&B event"


def tar_of(*entries: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def values_of(api: Api, key: str) -> list[dict[str, Any]]:
    response = api.client.get(f"/v1/jobs/{key}/attributes", headers=api.auth(ALICE))
    assert response.status_code == 200, response.text
    return [v for v in response.json()["values"] if v["origin"] != "SYSTEM"]


def test_defect_4_overlong_tar_entry_path_is_stored(api: Api) -> None:
    _, key = register(api)
    long_path = "d/" * 299 + "ok"  # 600 characters
    body = tar_of((long_path, b"data"), ("short", b"x"))
    committed = put(api, key, "osb", body).json()
    problems = " ".join(e["message"] for e in committed["extraction"]["errors"])
    assert "was not stored" in problems
    assert "512" in problems
    stored = {(v["name"], v["value"]) for v in values_of(api, key)}
    assert (f"{names.JP_OSB}:filename", long_path) in stored  # the value itself fits
    assert (f"{names.JP_OSB}:size:short", "1") in stored
    assert not any(name.startswith(f"{names.JP_OSB}:size:d/") for name, _ in stored)
    download = api.client.get(f"/v1/jobs/{key}/files/osb", headers=api.auth(ALICE))
    assert download.status_code == 200
    assert download.content == body


def test_defect_4_overlong_jdl_attribute_name_is_stored(api: Api) -> None:
    _, key = register(api)
    body = f'[ {"A" * 600} = 1; Executable = "/bin/true"; ]'.encode()
    committed = put(api, key, "jdl", body).json()
    assert committed["extraction"]["error_count"] == 1
    assert "was not stored" in committed["extraction"]["errors"][0]["message"]
    assert [v["value"] for v in values_of(api, key)] == ["/bin/true"]


def test_defect_4_overlong_lb_user_tag_name_is_stored(api: Api) -> None:
    jobid, key = register(api)
    lines = generate_job(random.Random(7), "tagged", jobid=jobid)
    index = next(i for i, line in enumerate(lines) if "jp:quality" in line)
    long_name = f"http://example.org/{'n' * 600}:quality"
    lines[index] = lines[index].replace("http://example.org/jp:quality", long_name)
    committed = put(api, key, "lb", ("\n".join(lines) + "\n").encode()).json()
    problems = " ".join(e["message"] for e in committed["extraction"]["errors"])
    assert "user tag" in problems
    assert "was not recorded" in problems
    assert api.client.get(f"/v1/jobs/{key}/tags", headers=api.auth(ALICE)).json() == []
    assert any(v["name"].endswith(":status") for v in values_of(api, key))


def test_defect_4_nul_in_a_jdl_is_reported_not_a_500(api: Api) -> None:
    _, key = register(api)
    committed = put(api, key, "jdl", b'[ a = "x\x00y"; ]').json()
    assert committed["extraction"]["error_count"] == 1


class _OddPlugin:
    """Derives what no database stores as it is."""

    name: ClassVar[str] = "odd"
    classes: ClassVar[tuple[str, ...]] = ("jdl",)
    aliases: ClassVar[dict[str, str]] = {}
    namespaces: ClassVar[tuple[str, ...]] = ("urn:odd",)

    def extract(self, path: Path, context: ExtractContext) -> Extraction:
        at = context.committed_at
        return Extraction(
            values=[
                DerivedValue("urn:odd:nul", "a\x00b", at),
                DerivedValue("urn:odd:surrogate\ud800", "c\udc80d", at),
                DerivedValue("urn:odd:" + "n" * 600, "v", at),
                DerivedValue("urn:odd:huge", "h" * (1024 * 1024 + 5), at, "x" * 2000),
            ],
            user_tags=[("t\x00", "w\x00")],
        )


def test_defect_4_derived_text_is_made_storable_in_one_place(api: Api) -> None:
    services = api.client.app.state.services  # type: ignore[attr-defined]
    services.uploads.plugins = PluginRegistry.from_plugins([_OddPlugin()])
    _, key = register(api)
    committed = put(api, key, "jdl", b"anything").json()
    assert committed["extraction"]["error_count"] == 7
    stored = {v["name"]: v for v in values_of(api, key)}
    assert stored["urn:odd:nul"]["value"] == "a\ufffdb"
    assert stored["urn:odd:surrogate\ufffd"]["value"] == "c\ufffdd"
    assert len(stored["urn:odd:huge"]["value"]) == 1024 * 1024
    assert len(stored["urn:odd:huge"]["origin_detail"]) == 1024
    assert not any(len(name) > 512 for name in stored)
    assert stored[f"{names.LB_TAG}:t\ufffd"]["value"] == "w\ufffd"


def upload_dump(api: Api) -> tuple[str, str]:
    jobid, key = register(api)
    dump = "\n".join(generate_job(random.Random(7), "cleared", jobid=jobid)) + "\n"
    put(api, key, "lb", dump.encode())
    return jobid, key


def reextract(api: Api, *args: str) -> None:
    env = {"JP_HOME": str(api.settings.home), "JP_DATABASE_URL": api.settings.database_url}
    run = subprocess.run(
        [sys.executable, "-m", "jp_primary.cli", "reextract", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr


def test_defect_12_record_is_stored_at_commit_and_at_reextraction(api: Api) -> None:
    jobid, key = upload_dump(api)
    first = api.client.get(f"/v1/jobs/{key}/record", headers=api.auth(ALICE))
    assert first.status_code == 200
    assert jobid in first.text
    # Later reads never look at the bytes again: spoiling them changes nothing...
    (stored,) = [p for p in api.storage_root.rglob("*") if p.is_file() and key in str(p)]
    stored.write_bytes(b"no events here\n")
    again = api.client.get(f"/v1/jobs/{key}/record", headers=api.auth(ALICE))
    assert again.status_code == 200
    assert again.text == first.text
    # ...until re-extraction derives the record again from what is stored now.
    reextract(api, "--class", "lb", f"--job={key}")
    gone = api.client.get(f"/v1/jobs/{key}/record", headers=api.auth(ALICE))
    assert gone.status_code == 404
    assert "no JobRecord" in gone.json()["detail"]


def test_defect_8_record_of_a_dump_without_events_is_404(api: Api) -> None:
    _, key = register(api)
    put(api, key, "lb", b"this is not an L&B event\n")
    response = api.client.get(f"/v1/jobs/{key}/record", headers=api.auth(ALICE))
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert "no L&B event" in detail
    assert "upload" in detail


def test_defect_16_reextract_keeps_the_commit_time(api: Api) -> None:
    _, key = register(api)
    put(api, key, "jdl", b'[ Executable = "/bin/true"; ]')
    put(api, key, "osb", tar_of(("out", b"x")), name="o")
    job = api.client.get(f"/v1/jobs/{key}", headers=api.auth(ALICE)).json()
    committed = {f["class"]: datetime.fromisoformat(f["committed_at"]) for f in job["files"]}
    before = {(v["name"], v["timestamp"]) for v in values_of(api, key)}
    reextract(api, f"--job={key}")
    after = values_of(api, key)
    assert {(v["name"], v["timestamp"]) for v in after} == before
    jdl = next(v for v in after if v["name"].startswith(names.JDL_FILE))
    assert datetime.fromisoformat(jdl["timestamp"]) == committed["jdl"]
    assert datetime.fromisoformat(jdl["timestamp"]) < datetime.now(UTC)


def test_bounded_errors_survive_json(api: Api) -> None:
    _, key = register(api)
    committed = put(api, key, "lb", b"\xff\xfe bad\n").json()
    assert json.loads(json.dumps(committed["extraction"]["errors"]))


def test_defect_12_a_dump_stored_before_records_gets_one_on_first_read(api: Api) -> None:
    jobid, key = upload_dump(api)
    engine = create_engine(api.settings.database_url)
    with engine.begin() as conn:
        deleted = conn.execute(
            text(
                "DELETE FROM job_records WHERE file_id IN (SELECT f.id FROM files f "
                "JOIN jobs j ON j.id = f.job_id WHERE j.key = :key)"
            ),
            {"key": key},
        )
        assert deleted.rowcount == 1
    response = api.client.get(f"/v1/jobs/{key}/record", headers=api.auth(ALICE))
    assert response.status_code == 200
    assert jobid in response.text
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT xml FROM job_records")).scalars().all()
    engine.dispose()
    assert response.text in stored
