"""GET /v1/jobs/{key}/prov: the job's provenance as W3C PROV, read back with the prov package."""

from __future__ import annotations

import hashlib
import io
import random

import pytest
from prov.constants import PROV
from prov.model import ProvDocument
from prov.serializers import Registry

from jp_primary.auth.identity import Role
from jp_primary.testing.lbdumps import generate_job
from tests.helpers import ALICE, BOB, LB_HOST, Api, new_jobid, register_job


def _job_with_files(api: Api) -> tuple[str, dict[str, bytes]]:
    jobid = new_jobid()
    key = register_job(api, jobid=jobid, lb=True)
    dump = "\n".join(generate_job(random.Random(3), "shallow_resubmission", jobid=jobid)).encode()
    files = {"lb": dump, "osb": b"output sandbox bytes", "jdl": b'[ Executable = "/bin/true"; ]'}
    for file_class, data in files.items():
        who = LB_HOST if file_class == "lb" else ALICE
        roles = (Role.TRUSTED,) if who == LB_HOST else ()
        answer = api.client.put(
            f"/v1/jobs/{key}/files/{file_class}", content=data, headers=api.auth(who, *roles)
        )
        assert answer.status_code in (200, 201), answer.text
    return key, files


def test_prov_json_names_files_owner_and_states(api: Api) -> None:
    key, files = _job_with_files(api)
    answer = api.client.get(f"/v1/jobs/{key}/prov", headers=api.auth(ALICE))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    doc = ProvDocument.deserialize(content=answer.text, format="json")
    records = doc.get_records()
    entities = {str(r.identifier): r for r in records if r.get_type().localpart == "Entity"}
    digests = {
        next(iter(r.get_attribute("jp:sha256")))
        for r in entities.values()
        if r.get_attribute("jp:sha256")
    }
    assert {hashlib.sha256(d).hexdigest() for d in files.values()} <= digests
    agents = [r for r in records if r.get_type().localpart == "Agent"]
    labels = {next(iter(a.get_attribute("prov:label"))) for a in agents}
    assert ALICE in labels
    owner = next(a for a in agents if ALICE in a.get_attribute("prov:label"))
    assert PROV["Person"] in owner.get_attribute("prov:type")
    assert LB_HOST in labels
    kinds = {r.get_type().localpart for r in records}
    assert {"Activity", "Usage", "Generation", "Attribution", "Association"} <= kinds
    states = [r for r in entities.values() if "state/" in str(r.identifier)]
    assert [next(iter(s.get_attribute("prov:value"))) for s in states][:2] == [
        "Submitted",
        "Waiting",
    ]


@pytest.mark.parametrize(
    ("accept", "media", "fmt"),
    [
        ("text/provenance-notation", "text/provenance-notation", "provn"),
        ("application/provenance+xml", "application/provenance+xml", "xml"),
        ("text/turtle", "text/turtle", "rdf"),
        ("application/ld+json;q=0.9, text/html;q=1", "application/ld+json", "rdf"),
    ],
)
def test_content_negotiation(api: Api, accept: str, media: str, fmt: str) -> None:
    key, _files = _job_with_files(api)
    answer = api.client.get(f"/v1/jobs/{key}/prov", headers={"Accept": accept, **api.auth(ALICE)})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith(media)
    if fmt == "provn":
        assert answer.text.startswith("document")
        assert "wasAssociatedWith" in answer.text
        return
    options = {"rdf_format": "json-ld" if "ld+json" in media else "turtle"} if fmt == "rdf" else {}
    doc = ProvDocument.deserialize(io.StringIO(answer.text), format=fmt, **options)
    assert any(r.get_type().localpart == "Agent" for r in doc.get_records()) or fmt == "rdf"
    assert fmt in Registry.serializers or fmt == "rdf"


def test_unacceptable_media_type_is_406(api: Api) -> None:
    key, _files = _job_with_files(api)
    answer = api.client.get(
        f"/v1/jobs/{key}/prov", headers={"Accept": "text/html", **api.auth(ALICE)}
    )
    assert answer.status_code == 406
    assert "text/provenance-notation" in answer.json()["detail"]


def test_someone_elses_job_is_403(api: Api) -> None:
    key = register_job(api)
    assert api.client.get(f"/v1/jobs/{key}/prov", headers=api.auth(BOB)).status_code == 403
