"""The index's own schema: its migrations match its tables, live apart from the primary's (own
script location, own version table), and every route of its app declares a policy."""

from __future__ import annotations

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from jp_primary.api.policies import RoutePolicy
from jp_primary.db import migrate as primary_migrate
from jp_primary.index import migrate
from jp_primary.index.api import routes


def test_tables_and_migrations_do_not_drift(index_db_url: str) -> None:
    migrate.check(index_db_url)
    assert not migrate.pending(index_db_url)


def test_the_index_and_a_primary_can_share_one_database(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/shared.sqlite"
    primary_migrate.upgrade(url)
    migrate.upgrade(url)
    assert not primary_migrate.pending(url)
    assert not migrate.pending(url)
    migrate.check(url)  # the index's check looks at its own tables only


def _policies(dependant: Dependant) -> list[RoutePolicy]:
    found = []
    for dep in dependant.dependencies:
        policy = getattr(dep.call, "jp_policy", None)
        if isinstance(policy, RoutePolicy):
            found.append(policy)
        found.extend(_policies(dep))
    return found


def test_every_index_route_declares_exactly_one_policy() -> None:
    api = [r for r in routes.router.routes if isinstance(r, APIRoute)]
    assert len(api) == 6
    assert [r.path for r in api if len(_policies(r.dependant)) != 1] == []
    anonymous = {r.path for r in api if any(p.anonymous for p in _policies(r.dependant))}
    # The push receiver is authorized by its secret address, checked by the service.
    assert anonymous == {"/healthz", "/readyz", "/metrics", "/v1/push/{name}/{secret}"}
