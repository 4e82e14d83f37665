from __future__ import annotations

from jp_primary.attributes import names
from jp_primary.auth.identity import Role
from tests.helpers import ALICE, BOB, LB_HOST, Api, register_job

VO = "https://vo.example.org/tags"


def test_single_and_several_tags_with_seq_and_author(api: Api) -> None:
    key = register_job(api)
    one = api.client.post(
        f"/v1/jobs/{key}/tags", json={"name": "color", "value": "green"}, headers=api.auth(ALICE)
    )
    assert one.status_code == 201
    many = api.client.post(
        f"/v1/jobs/{key}/tags",
        json={"tags": [{"name": "color", "value": "blue"}, {"name": f"{VO}:note", "value": "x"}]},
        headers=api.auth(LB_HOST, Role.TRUSTED),
    )
    assert many.status_code == 201
    tags = api.client.get(f"/v1/jobs/{key}/tags", headers=api.auth(ALICE)).json()
    assert [t["value"] for t in tags] == ["green", "blue", "x"]
    assert [t["author"] for t in tags] == [ALICE, LB_HOST, LB_HOST]
    seqs = [t["seq"] for t in tags]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 3
    assert tags[0]["name"] == f"{names.LB_TAG}:color"
    assert tags[2]["name"] == f"{VO}:note"  # a namespace of the user's own


def test_tags_are_never_overwritten_and_bad_bodies_refused(api: Api) -> None:
    key = register_job(api)
    url = f"/v1/jobs/{key}/tags"
    both = {"name": "a", "value": "b", "tags": [{"name": "c", "value": "d"}]}
    assert api.client.post(url, json=both, headers=api.auth(ALICE)).status_code == 422
    assert api.client.post(url, json={"name": "a"}, headers=api.auth(ALICE)).status_code == 422
    assert (
        api.client.post(url, json={"name": "", "value": "v"}, headers=api.auth(ALICE)).status_code
        == 422
    )
    assert (
        api.client.post(url, json={"name": "a", "value": "1"}, headers=api.auth(BOB)).status_code
        == 403
    )
    api.client.post(url, json={"name": "a", "value": "1"}, headers=api.auth(ALICE))
    api.client.post(url, json={"name": "a", "value": "2"}, headers=api.auth(ALICE))
    assert [t["value"] for t in api.client.get(url, headers=api.auth(ALICE)).json()] == ["1", "2"]


def test_attributes_system_and_user_with_aliases(api: Api) -> None:
    key = register_job(api)
    api.client.post(
        f"/v1/jobs/{key}/tags", json={"name": "color", "value": "green"}, headers=api.auth(ALICE)
    )
    url = f"/v1/jobs/{key}/attributes"
    everything = api.client.get(url, headers=api.auth(ALICE)).json()
    by_name = {v["name"]: v for v in everything["values"]}
    assert by_name[names.SYSTEM_OWNER]["value"] == ALICE
    assert by_name[names.SYSTEM_OWNER]["origin"] == "SYSTEM"
    assert by_name[names.SYSTEM_JOBID]["value"] == everything["jobid"]
    assert by_name[f"{names.LB_TAG}:color"]["origin"] == "USER"
    owner = api.client.get(url, params={"name": "jp:owner"}, headers=api.auth(ALICE)).json()
    assert [v["value"] for v in owner["values"]] == [ALICE]
    tag = api.client.get(url, params={"name": ["color", "jp:regtime"]}, headers=api.auth(ALICE))
    assert {v["origin"] for v in tag.json()["values"]} == {"USER", "SYSTEM"}
    assert api.client.get(url, headers=api.auth(BOB)).status_code == 403
    assert api.client.get("/v1/jobs/nope/attributes", headers=api.auth(ALICE)).status_code == 404


def test_defect_15_tags_body_is_one_tag_or_a_list(api: Api) -> None:
    """The two shapes the OpenAPI document declares, and nothing in between."""
    key = register_job(api)
    url = f"/v1/jobs/{key}/tags"
    one = api.client.post(url, json={"name": "a", "value": "1"}, headers=api.auth(ALICE))
    assert (one.status_code, len(one.json())) == (201, 1)
    several = {"tags": [{"name": "b", "value": "2"}, {"name": "c", "value": "3"}]}
    listed = api.client.post(url, json=several, headers=api.auth(ALICE))
    assert (listed.status_code, len(listed.json())) == (201, 2)
    for bad in [{}, {"tags": []}, {"value": "v"}, [{"name": "a", "value": "1"}], {"tags": {}}]:
        response = api.client.post(url, json=bad, headers=api.auth(ALICE))
        assert response.status_code == 422, bad
        assert response.json()["error"] == "ValidationError"
