"""GET /v1/jobs/{key}/ro-crate: a Process Run Crate zip, read back with rocrate and runcrate and
checked against the profile's requirements (Workflow Run RO-Crate, Process Run Crate 0.6)."""

from __future__ import annotations

import hashlib
import io
import json
import random
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

from rocrate.rocrate import ROCrate
from runcrate.report import dump_crate_actions

from jp_primary.auth.identity import Role
from jp_primary.testing.lbdumps import generate_job
from tests.helpers import ALICE, BOB, LB_HOST, Api, new_jobid, register_job

PROFILE = "https://w3id.org/ro/wfrun/process/0.6"
INSTRUMENT_TYPES = {"SoftwareApplication", "SoftwareSourceCode", "ComputationalWorkflow"}
STATUSES = {
    "http://schema.org/CompletedActionStatus",
    "http://schema.org/FailedActionStatus",
    "http://schema.org/ActiveActionStatus",
    "http://schema.org/PotentialActionStatus",
}


def _types(entity: dict[str, Any]) -> set[str]:
    kind = entity.get("@type", [])
    return {kind} if isinstance(kind, str) else set(kind)


def _ids(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [i["@id"] for i in items if isinstance(i, dict)]


def process_run_crate_problems(metadata: dict[str, Any]) -> list[str]:
    """The Process Run Crate profile's MUSTs and SHOULDs that this crate breaks."""
    graph = {e["@id"]: e for e in metadata["@graph"]}
    problems = []
    descriptor = graph.get("ro-crate-metadata.json")
    if descriptor is None or not _ids(descriptor.get("conformsTo"))[0].startswith(
        "https://w3id.org/ro/crate/"
    ):
        problems.append("no metadata descriptor conforming to RO-Crate")
    root = graph[_ids(descriptor["about"])[0]] if descriptor else {}
    if PROFILE not in _ids(root.get("conformsTo", [])):
        problems.append("the root data entity does not conform to the Process Run Crate profile")
    actions = [e for e in graph.values() if "CreateAction" in _types(e)]
    if not actions:
        problems.append("no CreateAction")
    parts = set(_ids(root.get("hasPart", [])))
    for action in actions:
        if action["@id"] not in _ids(root.get("mentions", [])):
            problems.append("the root data entity does not mention the action")
        instrument = _ids(action.get("instrument", []))
        if len(instrument) != 1 or not _types(graph.get(instrument[0], {})) & INSTRUMENT_TYPES:
            problems.append("the action's instrument is not one software entity (MUST)")
        for prop in ("agent", "endTime", "result"):
            if prop not in action:
                problems.append(f"the action has no {prop} (SHOULD)")
        for agent in _ids(action.get("agent", [])):
            if not _types(graph.get(agent, {})) & {"Person", "Organization"}:
                problems.append("the agent is not a Person or Organization")
        for prop in ("startTime", "endTime"):
            if prop in action:
                datetime.fromisoformat(action[prop])
        status = _ids(action.get("actionStatus", [])) or [action.get("actionStatus")]
        if "actionStatus" in action and status[0] not in STATUSES:
            problems.append(f"unknown actionStatus {status[0]}")
        if "error" in action and status[0] != "http://schema.org/FailedActionStatus":
            problems.append("error without FailedActionStatus")
        for item in _ids(action.get("object", [])) + _ids(action.get("result", [])):
            if "File" not in _types(graph.get(item, {})) or item not in parts:
                problems.append(f"{item} is not a File data entity of the crate")
    return problems


def _job(api: Api, scenario: str = "done") -> tuple[str, str, dict[str, bytes]]:
    jobid = new_jobid()
    key = register_job(api, jobid=jobid, lb=True)
    files = {
        "lb": "\n".join(generate_job(random.Random(5), scenario, jobid=jobid)).encode(),
        "isb": b"input sandbox",
        "osb": b"output sandbox " * 5000,
        "jdl": b'[ Executable = "/bin/hostname"; ]',
    }
    for file_class, data in files.items():
        who, roles = (LB_HOST, (Role.TRUSTED,)) if file_class == "lb" else (ALICE, ())
        sent = api.client.put(
            f"/v1/jobs/{key}/files/{file_class}", content=data, headers=api.auth(who, *roles)
        )
        assert sent.status_code in (200, 201), sent.text
    return key, jobid, files


def test_crate_holds_the_files_and_validates(api: Api, tmp_path: Path) -> None:
    key, jobid, files = _job(api)
    answer = api.client.get(f"/v1/jobs/{key}/ro-crate", headers=api.auth(ALICE))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    metadata = json.loads(archive.read("ro-crate-metadata.json"))
    assert process_run_crate_problems(metadata) == []
    graph = {e["@id"]: e for e in metadata["@graph"]}
    for file_class, data in files.items():
        path = f"files/{file_class}/{file_class}"
        assert archive.read(path) == data
        assert graph[path]["sha256"] == hashlib.sha256(data).hexdigest()
    action = next(e for e in graph.values() if "CreateAction" in _types(e))
    assert _ids(action["instrument"]) == ["files/jdl/jdl"]
    assert action["actionStatus"] == "http://schema.org/CompletedActionStatus"
    assert action["identifier"] == jobid
    assert graph[_ids(action["agent"])[0]]["name"] == ALICE
    assert _ids(action["object"]) == ["files/isb/isb", "files/jdl/jdl"]
    assert _ids(action["result"]) == ["files/osb/osb"]
    # Read back as the RO-Crate tools read it.
    path = tmp_path / "crate.zip"
    path.write_bytes(answer.content)
    crate = ROCrate(path)
    assert crate.root_dataset["conformsTo"][0].id == PROFILE
    report = io.StringIO()
    dump_crate_actions(crate, report)
    assert "instrument: files/jdl/jdl" in report.getvalue()
    assert "outputs:\n    files/osb/osb" in report.getvalue()


def test_failed_job_says_why(api: Api) -> None:
    key, _jobid, _files = _job(api, "aborted")
    answer = api.client.get(f"/v1/jobs/{key}/ro-crate", headers=api.auth(ALICE))
    metadata = json.loads(
        zipfile.ZipFile(io.BytesIO(answer.content)).read("ro-crate-metadata.json")
    )
    assert process_run_crate_problems(metadata) == []
    action = next(e for e in metadata["@graph"] if "CreateAction" in _types(e))
    assert action["actionStatus"] == "http://schema.org/FailedActionStatus"
    assert action["error"]


def test_links_reference_the_files_instead(api: Api) -> None:
    key, _jobid, files = _job(api)
    answer = api.client.get(
        f"/v1/jobs/{key}/ro-crate", params={"files": "links"}, headers=api.auth(ALICE)
    )
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    assert archive.namelist() == ["ro-crate-metadata.json"]
    metadata = json.loads(archive.read("ro-crate-metadata.json"))
    assert process_run_crate_problems(metadata) == []
    urls = {e["@id"]: e for e in metadata["@graph"] if "/files/" in e["@id"]}
    url = next(u for u in urls if u.endswith("/files/osb"))
    assert urls[url]["sha256"] == hashlib.sha256(files["osb"]).hexdigest()
    fetched = api.client.get(url, headers=api.auth(ALICE))
    assert fetched.content == files["osb"]


def test_someone_elses_job_is_403(api: Api) -> None:
    key = register_job(api)
    assert api.client.get(f"/v1/jobs/{key}/ro-crate", headers=api.auth(BOB)).status_code == 403
