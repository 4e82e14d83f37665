"""L&B dumps through the API: derived attributes at commit, the JobRecord, re-extraction."""

from __future__ import annotations

import random
import subprocess
import sys

from jp_primary.attributes import names
from jp_primary.auth.identity import Role
from jp_primary.testing.lbdumps import generate_job
from tests.helpers import ALICE, LB_HOST, Api, new_jobid, register_job


def upload_dump(api: Api, scenario: str) -> tuple[str, dict]:  # type: ignore[type-arg]
    jobid = new_jobid()
    trusted = api.auth(LB_HOST, Role.TRUSTED)
    key = register_job(api, ALICE, jobid=jobid, lb=True)
    dump = "\n".join(generate_job(random.Random(7), scenario, jobid=jobid)) + "\n"
    response = api.client.put(
        f"/v1/jobs/{key}/files/urn:org.glite.jp.primary:lb", content=dump.encode(), headers=trusted
    )
    assert response.status_code == 201, response.text
    return key, response.json()


def status_values(api: Api, key: str) -> list[str]:
    response = api.client.get(
        f"/v1/jobs/{key}/attributes", params={"name": "lb:status"}, headers=api.auth(ALICE)
    )
    return [v["value"] for v in response.json()["values"]]


def test_commit_derives_lb_attributes_with_seqs(api: Api) -> None:
    key, committed = upload_dump(api, "cleared")
    derived = {v["name"]: v for v in committed["extraction"]["values"]}
    assert committed["extraction"]["errors"] == []
    assert derived[f"{names.LB_ATTRIBUTES}:status"]["value"] == "Cleared"
    assert derived[f"{names.LB_ATTRIBUTES}:finalStatus"]["value"] == "Done"
    assert all(v["origin"] == "FILE" and v["origin_detail"] == "lb" for v in derived.values())
    assert status_values(api, key) == ["Cleared"]


def test_record_is_the_jobrecord_xml(api: Api) -> None:
    key, _ = upload_dump(api, "done")
    response = api.client.get(f"/v1/jobs/{key}/record", headers=api.auth(ALICE))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert "http://egee.cesnet.cz/en/Schema/LB/JobRecord" in response.text
    bare = register_job(api)
    missing = api.client.get(f"/v1/jobs/{bare}/record", headers=api.auth(ALICE))
    assert missing.status_code == 404


def test_reextract_replaces_the_derived_values_with_new_seqs(api: Api) -> None:
    key, committed = upload_dump(api, "aborted")
    before = {v["seq"] for v in committed["extraction"]["values"]}
    env = {"JP_HOME": str(api.settings.home), "JP_DATABASE_URL": api.settings.database_url}
    run = subprocess.run(
        [sys.executable, "-m", "jp_primary.cli", "reextract", "--class", "lb", f"--job={key}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "1 files" in run.stdout
    values = api.client.get(f"/v1/jobs/{key}/attributes", headers=api.auth(ALICE)).json()["values"]
    file_values = [v for v in values if v["origin"] == "FILE"]
    assert len(file_values) == len(before)
    assert min(v["seq"] for v in file_values) > max(before)
    assert status_values(api, key) == ["Aborted"]


def test_attribute_names_match_case_insensitively(api: Api) -> None:
    key, _ = upload_dump(api, "done")
    url = f"/v1/jobs/{key}/attributes"
    upper = api.client.get(url, params={"name": "lb:STATUS"}, headers=api.auth(ALICE)).json()
    assert [v["value"] for v in upper["values"]] == ["Done"]
    assert upper["values"][0]["name"] == f"{names.LB_ATTRIBUTES}:status"


def test_namespaced_lb_user_tags_become_jp_user_tags_at_commit(api: Api) -> None:
    key, committed = upload_dump(api, "tagged")
    tags = api.client.get(f"/v1/jobs/{key}/tags", headers=api.auth(ALICE)).json()
    assert [(t["name"], t["value"], t["author"]) for t in tags] == [
        ("http://example.org/jp:quality", "good", LB_HOST)
    ]
    assert tags[0]["seq"] > max(v["seq"] for v in committed["extraction"]["values"])
