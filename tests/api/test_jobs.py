from __future__ import annotations

from jp_primary.auth.identity import Role
from tests.helpers import ALICE, BOB, LB_HOST, Api, new_jobid, post_job, register_job


def test_registration_is_idempotent_for_the_same_owner(api: Api) -> None:
    jobid = new_jobid()
    first = post_job(api, jobid)
    again = post_job(api, jobid)
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["key"] == first.json()["key"] == jobid.rsplit("/", 1)[1]
    assert again.json()["registered_at"] == first.json()["registered_at"]
    assert first.json()["owner"] == ALICE


def test_registration_by_another_owner_conflicts(api: Api) -> None:
    jobid = new_jobid()
    assert post_job(api, jobid).status_code == 201
    response = post_job(api, jobid, BOB)
    assert response.status_code == 409
    assert response.json()["error"] == "Conflict"


def test_trusted_service_registers_for_an_owner(api: Api) -> None:
    jobid = new_jobid()
    response = post_job(api, jobid, LB_HOST, ALICE, Role.TRUSTED)
    assert response.status_code == 201
    assert response.json()["owner"] == ALICE
    assert response.json()["registered_by"] == LB_HOST
    key = response.json()["key"]
    assert api.client.get(f"/v1/jobs/{key}", headers=api.auth(ALICE)).status_code == 200


def test_plain_user_cannot_register_for_someone_else(api: Api) -> None:
    response = post_job(api, new_jobid(), BOB, ALICE)
    assert response.status_code == 403


def test_malformed_jobids_are_rejected(api: Api) -> None:
    for bad in [
        "nojob",
        "https://lb.example.org:9000/",
        "ftp://x/abc",
        "https://x/a b",
        "x" * 2000,
    ]:
        response = post_job(api, bad)
        assert response.status_code == 422, bad
        assert response.json()["error"] in {"InvalidInput", "ValidationError"}


def test_request_bodies_are_strict(api: Api) -> None:
    headers = api.auth(ALICE)
    assert api.client.post("/v1/jobs", json={"jobid": 5}, headers=headers).status_code == 422
    extra = {"jobid": new_jobid(), "colour": "red"}
    assert api.client.post("/v1/jobs", json=extra, headers=headers).status_code == 422
    broken = api.client.post(
        "/v1/jobs", content=b"{not json", headers=headers | {"content-type": "application/json"}
    )
    assert broken.status_code == 400
    assert broken.json()["error"] == "BadRequest"


def test_lookup_by_key_and_by_jobid(api: Api) -> None:
    jobid = new_jobid()
    key = register_job(api, jobid=jobid)
    by_key = api.client.get(f"/v1/jobs/{key}", headers=api.auth(ALICE))
    by_jobid = api.client.get("/v1/jobs", params={"jobid": jobid}, headers=api.auth(ALICE))
    assert by_key.status_code == by_jobid.status_code == 200
    assert by_key.json() == by_jobid.json()
    assert by_key.json()["files"] == []


def test_unknown_job_is_404(api: Api) -> None:
    response = api.client.get("/v1/jobs/doesnotexist0000000000", headers=api.auth(ALICE))
    assert response.status_code == 404
    assert set(response.json()) >= {"error", "detail"}


def test_without_a_token_is_401_and_another_users_job_is_403(api: Api) -> None:
    key = register_job(api)
    assert api.client.get(f"/v1/jobs/{key}").status_code == 401
    invalid = api.client.get(f"/v1/jobs/{key}", headers={"Authorization": "Bearer garbage"})
    assert invalid.status_code == 401
    assert "garbage" not in invalid.text
    assert api.client.get(f"/v1/jobs/{key}", headers=api.auth(BOB)).status_code == 403
    admin = api.client.get(f"/v1/jobs/{key}", headers=api.auth(BOB, Role.ADMIN))
    assert admin.status_code == 200


def test_bulk_registration_reports_each_item(api: Api) -> None:
    taken = new_jobid()  # trusted-registered for Bob: a trusted registration for Alice conflicts
    assert post_job(api, taken, LB_HOST, BOB, Role.TRUSTED).status_code == 201
    fresh = new_jobid()
    body = {
        "jobs": [
            {"jobid": fresh, "owner": ALICE},
            {"jobid": fresh, "owner": ALICE},
            {"jobid": taken, "owner": ALICE},
            {"jobid": "malformed", "owner": ALICE},
        ]
    }
    response = api.client.post("/v1/jobs/bulk", json=body, headers=api.auth(LB_HOST, Role.TRUSTED))
    assert response.status_code == 200
    statuses = [r["status"] for r in response.json()["results"]]
    assert statuses == [201, 200, 409, 422]
    denied = api.client.post("/v1/jobs/bulk", json=body, headers=api.auth(ALICE))
    assert denied.status_code == 403
