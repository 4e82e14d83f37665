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


def test_only_health_routes_are_anonymous() -> None:
    anonymous = {r.path for r in api_routes() if any(p.anonymous for p in _policies(r.dependant))}
    assert anonymous == {"/healthz", "/readyz", "/metrics"}


def test_no_route_outside_the_routers() -> None:
    served = {
        (path, method.upper())
        for path, operations in create_app().openapi()["paths"].items()
        for method in operations
    }
    declared = {(r.path, m) for r in api_routes() for m in r.methods}
    assert served == declared
