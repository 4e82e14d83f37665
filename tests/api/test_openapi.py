from __future__ import annotations

import json
from pathlib import Path

from jp_primary.app import create_app
from tests.api.test_route_policies import api_routes

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


def test_every_route_has_a_summary() -> None:
    for route in api_routes():
        assert route.description or route.summary, route.path
