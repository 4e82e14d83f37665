"""Defect 11 (issue 14): squatting someone else's jobid. A trusted registration is authoritative
over a non-trusted one for another owner (docs/auth.md, "Jobid squatting")."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from jp_primary.auth.identity import Identity, Role
from jp_primary.db.models import RetractedValueRow
from jp_primary.services import jobs, quarantine
from jp_primary.services.container import AppServices
from jp_primary.testing.lbdumps import generate_job
from tests.helpers import ALICE, BOB, LB_HOST, Api, new_jobid

MALLORY = "/DC=org/DC=example/O=JP Test/CN=Mallory/CN=666"
ADMIN = "/CN=Operator"
LB2 = "/DC=org/DC=example/O=JP Test/CN=host/lb2.example.org"


def _register(api: Api, jobid: str, subject: str, owner: str | None = None, *roles: Role):
    body = {"jobid": jobid} if owner is None else {"jobid": jobid, "owner": owner}
    return api.client.post("/v1/jobs", json=body, headers=api.auth(subject, *roles))


def _dump(jobid: str, seed: int) -> bytes:
    return "\n".join(generate_job(random.Random(seed), "done", jobid=jobid)).encode()


def _services(api: Api) -> AppServices:
    services: AppServices = api.client.app.state.services  # type: ignore[attr-defined]
    return services


def _squat(api: Api, jobid: str) -> tuple[str, bytes, str]:
    """Mallory registers Alice's future jobid, uploads a fake dump, tags it and starts an
    upload; returns the key, the fake bytes and the unfinished upload's id."""
    mallory = api.auth(MALLORY)
    key = _register(api, jobid, MALLORY).json()["key"]
    fake = _dump(jobid, 666)
    assert api.client.put(f"/v1/jobs/{key}/files/lb", content=fake, headers=mallory).status_code
    tag = api.client.post(
        f"/v1/jobs/{key}/tags", json={"name": "planted", "value": "x"}, headers=mallory
    )
    assert tag.status_code == 201
    started = api.client.post(
        f"/v1/jobs/{key}/uploads", json={"class": "osb", "name": "out.tar"}, headers=mallory
    )
    assert started.status_code == 201
    return key, fake, started.json()["upload_id"]


def test_defect_11_trusted_registration_takes_over_a_squatted_jobid(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    jobid = new_jobid()
    key, fake, mallory_upload = _squat(api, jobid)
    before = api.client.get(f"/v1/jobs/{key}/attributes", headers=api.auth(MALLORY)).json()
    squatted_seqs = {v["seq"] for v in before["values"]}
    assert squatted_seqs

    with caplog.at_level(logging.WARNING, logger="jp_primary.security"):
        taken = _register(api, jobid, LB_HOST, ALICE, Role.TRUSTED)
    assert taken.status_code == 201, taken.text
    assert taken.json()["owner"] == ALICE
    assert taken.json()["registered_by"] == LB_HOST
    event = [r for r in caplog.records if r.name == "jp_primary.security"]
    assert len(event) == 1
    assert MALLORY in event[0].getMessage()
    assert "Bearer" not in event[0].getMessage()

    alice = api.auth(ALICE)
    job = api.client.get(f"/v1/jobs/{key}", headers=alice)
    assert job.status_code == 200  # the rightful owner is not locked out
    assert job.json()["files"] == []
    values = api.client.get(f"/v1/jobs/{key}/attributes", headers=alice).json()["values"]
    assert not squatted_seqs & {v["seq"] for v in values}
    assert all(v["origin"] == "SYSTEM" for v in values)
    assert {v["value"] for v in values if v["name"].endswith("owner")} == {ALICE}
    assert api.client.get(f"/v1/jobs/{key}/tags", headers=alice).json() == []

    # The squatter lost the job and her unfinished upload.
    assert api.client.get(f"/v1/jobs/{key}", headers=api.auth(MALLORY)).status_code == 403
    late = api.client.put(
        f"/v1/uploads/{mallory_upload}", content=b"late", headers=api.auth(MALLORY)
    )
    assert late.status_code in (403, 409, 410)

    # The real dump goes where the fake one was, and is what the owner reads.
    real = _dump(jobid, 1)
    lb = api.auth(LB_HOST, Role.TRUSTED)
    stored = api.client.put(f"/v1/jobs/{key}/files/lb", content=real, headers=lb)
    assert stored.status_code == 201, stored.text
    assert api.client.get(f"/v1/jobs/{key}/files/lb", headers=alice).content == real

    # The admin finds what the squatter stored, bytes included, and nobody else does.
    assert api.client.get("/v1/admin/quarantine", headers=alice).status_code == 403
    entries = api.client.get("/v1/admin/quarantine", headers=api.auth(ADMIN, Role.ADMIN)).json()
    entry = next(e for e in entries if e["jobid"] == jobid)
    assert entry["squatter"] == MALLORY
    assert entry["new_owner"] == ALICE
    assert entry["claimed_by"] == LB_HOST
    assert {v["seq"] for v in entry["values"]} == squatted_seqs
    assert any(v["name"].endswith("planted") or v["value"] == "x" for v in entry["values"])
    assert [u["upload_id"] for u in entry["uploads"]] == [mallory_upload]
    (held,) = entry["files"]
    assert held["class"] == "lb"
    assert held["uploader"] == MALLORY
    assert held["location"].startswith(quarantine.QUARANTINE_PREFIX)
    assert (api.storage_root / held["location"]).read_bytes() == fake

    # Feeds will announce the removed values as retracted with the takeover's first new seq.
    services = _services(api)
    rows = services.db.run_sync(
        lambda s: list(s.exec(select(RetractedValueRow).where(RetractedValueRow.job_id > 0)))
    )
    mine = [r for r in rows if r.seq in squatted_seqs]
    assert {r.seq for r in mine} == squatted_seqs
    assert {r.announced_seq for r in mine} == {min(v["seq"] for v in values)}


def test_defect_11_two_trusted_registrations_for_different_owners_conflict(api: Api) -> None:
    jobid = new_jobid()
    assert _register(api, jobid, LB_HOST, ALICE, Role.TRUSTED).status_code == 201
    assert _register(api, jobid, LB2, BOB, Role.TRUSTED).status_code == 409
    assert _register(api, jobid, MALLORY).status_code == 409
    job = api.client.get(f"/v1/jobs?jobid={jobid}", headers=api.auth(ALICE))
    assert job.status_code == 200
    assert job.json()["owner"] == ALICE


def test_defect_11_a_confirmed_own_registration_is_kept_and_then_trusted(api: Api) -> None:
    jobid = new_jobid()
    key = _register(api, jobid, ALICE).json()["key"]
    alice = api.auth(ALICE)
    put = api.client.put(f"/v1/jobs/{key}/files/osb", params={"name": "a"}, content=b"mine")
    assert put.status_code == 401
    put = api.client.put(
        f"/v1/jobs/{key}/files/osb", params={"name": "a"}, content=b"mine", headers=alice
    )
    assert put.status_code == 201
    assert _register(api, jobid, LB_HOST, ALICE, Role.TRUSTED).status_code == 200
    files = api.client.get(f"/v1/jobs/{key}", headers=alice).json()["files"]
    assert [f["name"] for f in files] == ["a"]
    # Now trusted-confirmed: another trusted registration for another owner conflicts.
    assert _register(api, jobid, LB2, BOB, Role.TRUSTED).status_code == 409


def test_defect_11_squatting_the_key_with_another_jobid(api: Api) -> None:
    jobid = new_jobid()
    unique = jobid.rsplit("/", 1)[1]
    assert _register(api, f"https://evil.example.org/{unique}", MALLORY).status_code == 201
    taken = _register(api, jobid, LB_HOST, ALICE, Role.TRUSTED)
    assert taken.status_code == 201
    assert taken.json()["jobid"] == jobid
    assert taken.json()["owner"] == ALICE


def test_defect_11_bulk_registration_takes_over_too(api: Api) -> None:
    jobid = new_jobid()
    key, _, _ = _squat(api, jobid)
    response = api.client.post(
        "/v1/jobs/bulk",
        json={"jobs": [{"jobid": jobid, "owner": ALICE}, {"jobid": new_jobid(), "owner": BOB}]},
        headers=api.auth(LB_HOST, Role.TRUSTED),
    )
    assert [r["status"] for r in response.json()["results"]] == [201, 201]
    job = api.client.get(f"/v1/jobs/{key}", headers=api.auth(ALICE)).json()
    assert job["owner"] == ALICE
    assert job["files"] == []


def test_defect_11_quarantine_is_kept_from_gc_and_purged_after_retention(api: Api) -> None:
    jobid = new_jobid()
    _squat(api, jobid)
    assert _register(api, jobid, LB_HOST, ALICE, Role.TRUSTED).status_code == 201
    services = _services(api)
    entries = services.db.run_sync(quarantine.list_entries)
    (entry,) = [e for e in entries if e["jobid"] == jobid]
    location = entry["files"][0]["location"]
    assert (api.storage_root / location).exists()

    report = asyncio.run(services.gc.collect(min_age=timedelta(0)))
    assert location not in {o.key for o in report.orphans}

    assert asyncio.run(services.quarantine.purge()) == 0  # not yet due
    later = datetime.now(UTC) + timedelta(days=91)
    assert asyncio.run(services.quarantine.purge(later)) >= 1
    assert not (api.storage_root / location).exists()
    assert jobid not in {e["jobid"] for e in services.db.run_sync(quarantine.list_entries)}


def test_defect_11_squatter_and_trusted_registration_in_one_group(api: Api) -> None:
    """Both in one group commit: the squatter's values, not yet stored, never reach the job."""
    services = _services(api)
    other = new_jobid()
    mallory = Identity(MALLORY)
    trusted = Identity(LB_HOST, roles=frozenset({Role.TRUSTED}))
    requests = [
        jobs.RegistrationRequest(mallory, other, MALLORY),
        jobs.RegistrationRequest(trusted, other, ALICE),
    ]
    outcomes = services.db.run_sync(
        lambda s: jobs._register_each(s, requests, timedelta(days=1))  # noqa: SLF001
    )
    assert [o.job.owner for o in outcomes if isinstance(o, jobs.Registration)] == [MALLORY, ALICE]
    key = other.rsplit("/", 1)[1]
    values = api.client.get(f"/v1/jobs/{key}/attributes", headers=api.auth(ALICE)).json()
    owners = {v["value"] for v in values["values"] if v["name"].endswith("owner")}
    assert owners == {ALICE}  # no SYSTEM value of the squatter's registration survives
