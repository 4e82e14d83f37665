"""A one-shot PUT that registers its unknown job first (X-Register-Jobid, X-Register-Owner): the
fail-safe registration of dump importers in one request."""

from __future__ import annotations

import hashlib

import httpx

from jp_primary.auth.identity import Role
from jp_primary.client.calls import key_of
from tests.helpers import ALICE, BOB, LB_HOST, Api, new_jobid, register_job


def _put(
    api: Api, jobid: str, body: bytes, subject: str = LB_HOST, *roles: Role, **headers: str | bytes
) -> httpx.Response:
    sent = {"X-Content-SHA256": hashlib.sha256(body).hexdigest()}
    sent |= {name.replace("_", "-"): value for name, value in headers.items()}  # type: ignore[misc]
    return api.client.put(
        f"/v1/jobs/{key_of(jobid)}/files/isb",
        content=body,
        headers=api.auth(subject, *roles) | sent,
    )


def _job(api: Api, jobid: str) -> httpx.Response:
    return api.client.get(f"/v1/jobs/{key_of(jobid)}", headers=api.auth(LB_HOST, Role.TRUSTED))


def test_an_unknown_job_is_registered_for_the_named_owner_and_the_file_stored(api: Api) -> None:
    jobid = new_jobid()
    put = _put(
        api,
        jobid,
        b"sandbox",
        LB_HOST,
        Role.TRUSTED,
        X_Register_Jobid=jobid,
        X_Register_Owner=ALICE,
    )
    assert put.status_code == 201, put.text
    assert put.headers.get("X-Job-Registered") == "true"
    job = _job(api, jobid).json()
    assert job["owner"] == ALICE
    assert job["jobid"] == jobid
    assert [f["sha256"] for f in job["files"]] == [hashlib.sha256(b"sandbox").hexdigest()]


def test_a_known_job_is_left_as_it_is(api: Api) -> None:
    jobid = new_jobid()
    register_job(api, BOB, jobid=jobid, lb=True)
    put = _put(
        api, jobid, b"x", LB_HOST, Role.TRUSTED, X_Register_Jobid=jobid, X_Register_Owner=ALICE
    )
    assert put.status_code == 201, put.text
    assert "X-Job-Registered" not in put.headers
    assert _job(api, jobid).json()["owner"] == BOB


def test_without_the_header_an_unknown_job_is_still_404(api: Api) -> None:
    jobid = new_jobid()
    assert _put(api, jobid, b"x", LB_HOST, Role.TRUSTED).status_code == 404
    alone = _put(api, jobid, b"x", LB_HOST, Role.TRUSTED, X_Register_Owner=ALICE)
    assert alone.status_code == 422
    assert "needs X-Register-Jobid" in alone.json()["detail"]
    assert _job(api, jobid).status_code == 404


def test_refused_registrations_register_nothing(api: Api) -> None:
    jobid, other = new_jobid(), new_jobid()
    mismatched = _put(api, jobid, b"x", LB_HOST, Role.TRUSTED, X_Register_Jobid=other)
    assert mismatched.status_code == 422
    assert "is not the job of this path" in mismatched.json()["detail"]
    # Only trusted services register jobs for another owner, as with POST /v1/jobs.
    foreign = _put(api, jobid, b"x", BOB, X_Register_Jobid=jobid, X_Register_Owner=ALICE)
    assert foreign.status_code == 403
    # Header bytes arrive as Latin-1: a UTF-8 owner would be stored garbled, so it is refused.
    garbled = _put(
        api,
        jobid,
        b"x",
        LB_HOST,
        Role.TRUSTED,
        X_Register_Jobid=jobid,
        X_Register_Owner="/CN=Zdeněk".encode(),
    )
    assert garbled.status_code == 422
    assert "must be ASCII" in garbled.json()["detail"]
    for job in (jobid, other):
        assert _job(api, job).status_code == 404


def test_a_caller_registers_a_job_for_itself(api: Api) -> None:
    jobid = new_jobid()
    put = _put(api, jobid, b"mine", BOB, X_Register_Jobid=jobid)
    assert put.status_code == 201, put.text
    assert put.headers.get("X-Job-Registered") == "true"
    assert _job(api, jobid).json()["owner"] == BOB
