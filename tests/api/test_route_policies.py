"""Every route declares who may call it (a policy dependency from jp_primary.api.policies)."""

from __future__ import annotations

from fastapi.dependencies.models import Dependant

from jp_primary.api.policies import RoutePolicy
from jp_primary.app import create_app
from tests.helpers import api_routes


def _policies(dependant: Dependant) -> list[RoutePolicy]:
    found = []
    for dep in dependant.dependencies:
        policy = getattr(dep.call, "jp_policy", None)
        if isinstance(policy, RoutePolicy):
            found.append(policy)
        found.extend(_policies(dep))
    return found


def test_every_route_declares_exactly_one_policy() -> None:
    routes = api_routes()
    assert len(routes) >= 15
    missing = [f"{sorted(r.methods)} {r.path}" for r in routes if len(_policies(r.dependant)) != 1]
    assert missing == []


def test_only_health_docs_and_sign_in_routes_are_anonymous() -> None:
    anonymous = {
        (m, r.path)
        for r in api_routes()
        for m in r.methods
        if any(p.anonymous for p in _policies(r.dependant))
    }
    assert anonymous == {
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        # The API documentation, served from packaged assets (as FastAPI's own pages were open).
        ("GET", "/docs"),
        ("GET", "/redoc"),
        ("GET", "/docs/assets/{name}"),
        # The web view's start page, its stylesheet and signing in and out.
        ("GET", "/ui/"),
        ("GET", "/ui/static/{name}"),
        ("GET", "/ui/sign-in"),
        ("POST", "/ui/sign-in"),
        ("POST", "/ui/sign-out"),
    }


def test_no_route_outside_the_routers() -> None:
    served = {
        (path, method.upper())
        for path, operations in create_app().openapi()["paths"].items()
        for method in operations
    }
    declared = {(r.path, m) for r in api_routes() for m in r.methods if r.include_in_schema}
    assert served == declared


def test_routes_outside_the_openapi_document_are_the_pages() -> None:
    hidden = {r.path for r in api_routes() if not r.include_in_schema}
    assert all(p.startswith(("/ui/", "/docs", "/redoc")) for p in hidden), hidden
