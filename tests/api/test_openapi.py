from __future__ import annotations

import json
from pathlib import Path

from jp_primary.app import create_app
from tests.helpers import api_routes

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def test_committed_openapi_matches_the_live_schema() -> None:
    live = create_app().openapi()
    committed = json.loads(COMMITTED.read_text())
    assert committed == json.loads(json.dumps(live)), (
        "openapi/openapi.json is stale: regenerate with `jp-primary openapi > openapi/openapi.json`"
    )


def test_raw_upload_bodies_and_errors_are_declared() -> None:
    spec = create_app().openapi()
    put = spec["paths"]["/v1/uploads/{upload_id}"]["put"]
    assert "application/octet-stream" in put["requestBody"]["content"]
    for path in spec["paths"].values():
        for operation in path.values():
            if operation.get("requestBody", {}).get("content", {}).get("application/json"):
                assert "400" in operation["responses"], operation["operationId"]
                # Every JSON body is capped (JP_MAX_JSON_BODY): the 413 is part of the contract.
                assert "413" in operation["responses"], operation["operationId"]


def test_every_route_has_a_summary() -> None:
    for route in api_routes():
        assert route.description or route.summary, route.path


def test_defect_15_openapi_describes_classes_jobids_and_tag_bodies() -> None:
    from jp_primary.plugins.registry import BUILTIN_CLASSES

    spec = create_app().openapi()
    for path, method in [
        ("/v1/jobs/{key}/files/{file_class}", "get"),
        ("/v1/jobs/{key}/files/{file_class}", "put"),
    ]:
        (param,) = [
            p for p in spec["paths"][path][method]["parameters"] if p["name"] == "file_class"
        ]
        for name, aliases in BUILTIN_CLASSES.items():
            for spelled in (name, *aliases):
                assert spelled in param["description"], (path, method, spelled)
    upload_class = spec["components"]["schemas"]["UploadIn"]["properties"]["class"]
    assert "urn:org.glite.jp.primary:classad" in upload_class["description"]
    jobid = spec["components"]["schemas"]["RegisterIn"]["properties"]["jobid"]["description"]
    assert "1024" in jobid
    assert "[A-Za-z0-9._~-]" in jobid
    body = spec["paths"]["/v1/jobs/{key}/tags"]["post"]["requestBody"]["content"]
    shapes = body["application/json"]["schema"]["anyOf"]
    assert [s["$ref"].rsplit("/", 1)[-1] for s in shapes] == ["TagIn", "TagListIn"]
    schemas = spec["components"]["schemas"]
    assert schemas["TagIn"]["required"] == ["name", "value"]
    assert schemas["TagListIn"]["required"] == ["tags"]
    assert schemas["TagIn"]["additionalProperties"] is False  # so exactly one shape matches
    assert schemas["TagListIn"]["additionalProperties"] is False
