"""Helpers shared by the test modules (fixtures live in the conftest files; these are plain code).

Test modules import shared helpers from here, never from each other: registering a job, starting
an upload, the test identities, the app's routes, and the skip-or-fail decision for the real L&B
dumps in ``../shared/data/lb``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from jp_primary.auth.identity import Role
from jp_primary.auth.tokens import ServiceTokens, load_or_create_key
from jp_primary.config import (
    AuthSettings,
    DatabaseSettings,
    ServerSettings,
    Settings,
    StorageSettings,
)

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

ALICE = "/DC=org/DC=example/O=JP Test/CN=Alice Smith/CN=12345"
BOB = "/DC=org/DC=example/O=JP Test/CN=Bob Jones/CN=67890"
LB_HOST = "/DC=org/DC=example/O=JP Test/CN=host/lb.example.org"


def new_jobid() -> str:
    """A fresh L&B-style jobid (22-character unique part)."""
    return f"https://lb.example.org:9000/{secrets.token_urlsafe(16)[:22]}"


def make_settings(
    home: Path, database_url: str, server: dict[str, Any] | None = None, **storage: Any
) -> Settings:
    return Settings(
        server=ServerSettings(home=home, **(server or {})),
        database=DatabaseSettings(url=database_url),
        storage=StorageSettings(**storage),
        auth=AuthSettings(),
    )


class Api:
    """A TestClient plus the tokens of this service, for writing tests tersely."""

    def __init__(self, client: TestClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.tokens = ServiceTokens(load_or_create_key(settings.token_key_path))

    def auth(self, subject: str, *roles: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.issue(subject, roles)}"}

    @property
    def storage_root(self) -> Path:
        return self.settings.storage_root


# -- jobs and uploads ---------------------------------------------------------------------------


def job_body(jobid: str | None = None, owner: str | None = None) -> dict[str, str]:
    """The body of ``POST /v1/jobs``: a fresh jobid unless given, the owner only when given."""
    body = {"jobid": jobid or new_jobid()}
    if owner is not None:
        body["owner"] = owner
    return body


def registered_key(response: httpx.Response) -> str:
    """The key of a job a ``POST /v1/jobs`` answer registered (201), failing the test otherwise."""
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


def post_job(
    api: Api, jobid: str | None = None, subject: str = ALICE, owner: str | None = None, *roles: Role
) -> httpx.Response:
    """``POST /v1/jobs`` as ``subject`` (with ``roles``), the answer unchecked: for the tests of
    registration itself."""
    return api.client.post(
        "/v1/jobs", json=job_body(jobid, owner), headers=api.auth(subject, *roles)
    )


def register_job(
    api: Api, owner: str = ALICE, *, jobid: str | None = None, lb: bool = False
) -> str:
    """Register a job owned by ``owner`` and return its key: the one way tests set up a job.

    By default the owner registers it; with ``lb=True`` the trusted L&B host registers it for the
    owner, as L&B does before it commits a dump.
    """
    if lb:
        return registered_key(post_job(api, jobid, LB_HOST, owner, Role.TRUSTED))
    return registered_key(post_job(api, jobid, owner))


def start_upload(api: Api, key: str, subject: str = ALICE, **body: object) -> httpx.Response:
    """``POST /v1/jobs/{key}/uploads`` (class ``osb`` unless given), the answer unchecked."""
    payload = {"class": "osb", **body}
    return api.client.post(f"/v1/jobs/{key}/uploads", json=payload, headers=api.auth(subject))


# -- the application ----------------------------------------------------------------------------


def api_routes() -> list[APIRoute]:
    """The application's routes, read from its routers (every route the app serves is in one:
    see test_no_route_outside_the_routers)."""
    from jp_primary.app import ROUTERS

    return [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]


# -- shared data --------------------------------------------------------------------------------

REQUIRE_SHARED_DATA = "JP_REQUIRE_SHARED_DATA"


def shared_data_or_skip(*parts: str, pattern: str = "*") -> Path:
    """The folder ``../shared/<parts>`` next to the repository, holding files matching
    ``pattern``; when it is missing or empty the test skips with the reason, unless
    ``JP_REQUIRE_SHARED_DATA=1`` (set by ``.ci/run``) makes that a failure.

    The one place that decides skip-or-fail for shared data, as ``_postgres_or_skip`` in
    tests/conftest.py does for PostgreSQL.
    """
    folder = SHARED.joinpath(*parts)
    if not folder.is_dir() or not any(folder.glob(pattern)):
        reason = f"shared data not present: no {pattern} in {folder}"
        if os.environ.get(REQUIRE_SHARED_DATA) == "1":
            pytest.fail(f"{reason} ({REQUIRE_SHARED_DATA}=1 makes this a failure)")
        pytest.skip(reason)
    return folder
