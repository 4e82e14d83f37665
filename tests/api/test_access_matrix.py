"""Every route against {anonymous, another user, owner, trusted service, indexer, admin}."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from jp_primary.auth.identity import Role
from jp_primary.testing.lbdumps import generate_job
from tests.helpers import ALICE, BOB, LB_HOST, Api, api_routes, new_jobid, register_job

WHO = ("anonymous", "other", "owner", "trusted", "indexer", "admin")
SUBJECTS = {
    "other": (BOB,),
    "owner": (ALICE,),
    "trusted": (LB_HOST, Role.TRUSTED),
    "indexer": ("/CN=index.example.org", Role.INDEXER),
    "admin": ("/CN=Operator", Role.ADMIN),
}
READ = {"anonymous": 401, "other": 403, "owner": 200, "trusted": 200, "indexer": 403, "admin": 200}
WRITE = {"anonymous": 401, "other": 403, "owner": 201, "trusted": 201, "indexer": 403, "admin": 403}
STARTER = {"anonymous": 401, "other": 403, "owner": 0, "trusted": 403, "indexer": 403, "admin": 403}
EVERYONE = dict.fromkeys(WHO, 200)
# Feed routes: indexers (their own feeds) and admins; the rest are refused at the route.
FEEDS = dict.fromkeys(WHO, 403) | {"anonymous": 401}
FEED_BODY = {"attributes": ["system:owner"], "history": False, "continuous": True}
# The web view: a page that needs an identity sends anonymous browsers to sign in (303).
PAGE_READ = READ | {"anonymous": 303}
CSRF = {"headers": {"Cookie": "jp_ui_csrf=matrix"}}


@dataclass
class World:
    api: Api
    key: str
    jobid: str

    def upload(self, sent: bool = False) -> str:
        started = self.api.client.post(
            f"/v1/jobs/{self.key}/uploads",
            json={"class": "osb", "name": new_jobid()[-8:]},
            headers=self.api.auth(ALICE),
        ).json()
        if sent:
            self.api.client.put(
                f"/v1/uploads/{started['upload_id']}", content=b"x", headers=self.api.auth(ALICE)
            )
        return str(started["upload_id"])

    def feed(self) -> str:
        """A pull feed of the indexer."""
        created = self.api.client.post(
            "/v1/feeds",
            json=FEED_BODY,
            headers=self.api.auth(*SUBJECTS["indexer"]),  # type: ignore[arg-type]
        )
        return str(created.json()["feed_id"])


@pytest.fixture
def world(api: Api) -> World:
    jobid = new_jobid()
    key = register_job(api, jobid=jobid)
    dump = "\n".join(generate_job(random.Random(1), "done", jobid=jobid)).encode()
    api.client.put(f"/v1/jobs/{key}/files/lb", content=dump, headers=api.auth(ALICE))
    return World(api, key, jobid)


# (method, path template, expected per identity, request builder)
Case = tuple[str, str, dict[str, int], Callable[[World], dict]]  # type: ignore[type-arg]
CASES: list[Case] = [
    ("GET", "/healthz", EVERYONE, lambda w: {"url": "/healthz"}),
    ("GET", "/readyz", EVERYONE, lambda w: {"url": "/readyz"}),
    ("GET", "/metrics", EVERYONE, lambda w: {"url": "/metrics"}),
    (
        "POST",
        "/v1/jobs",
        WRITE | {"indexer": 201, "admin": 201, "other": 201},
        lambda w: {"url": "/v1/jobs", "json": {"jobid": new_jobid()}},
    ),
    (
        "POST",
        "/v1/jobs/bulk",
        dict.fromkeys(WHO, 403) | {"anonymous": 401, "trusted": 200},
        lambda w: {
            "url": "/v1/jobs/bulk",
            "json": {"jobs": [{"jobid": new_jobid(), "owner": ALICE}]},
        },
    ),
    ("GET", "/v1/jobs", READ, lambda w: {"url": "/v1/jobs", "params": {"jobid": w.jobid}}),
    ("GET", "/v1/jobs/{key}", READ, lambda w: {"url": f"/v1/jobs/{w.key}"}),
    (
        "POST",
        "/v1/jobs/{key}/uploads",
        WRITE,
        lambda w: {
            "url": f"/v1/jobs/{w.key}/uploads",
            "json": {"class": "isb", "name": new_jobid()[-8:]},
        },
    ),
    (
        "PUT",
        "/v1/uploads/{upload_id}",
        STARTER | {"owner": 204},
        lambda w: {"url": f"/v1/uploads/{w.upload()}", "content": b"bytes"},
    ),
    (
        "GET",
        "/v1/uploads/{upload_id}",
        STARTER | {"owner": 200},
        lambda w: {"url": f"/v1/uploads/{w.upload()}"},
    ),
    (
        "POST",
        "/v1/uploads/{upload_id}/commit",
        STARTER | {"owner": 200},
        lambda w: {"url": f"/v1/uploads/{w.upload(sent=True)}/commit"},
    ),
    (
        "DELETE",
        "/v1/uploads/{upload_id}",
        STARTER | {"owner": 204},
        lambda w: {"url": f"/v1/uploads/{w.upload()}"},
    ),
    (
        "PUT",
        "/v1/jobs/{key}/files/{file_class}",
        WRITE,
        lambda w: {
            "url": f"/v1/jobs/{w.key}/files/osb",
            "params": {"name": new_jobid()[-8:]},
            "content": b"x",
        },
    ),
    ("GET", "/v1/jobs/{key}/files", READ, lambda w: {"url": f"/v1/jobs/{w.key}/files"}),
    (
        "GET",
        "/v1/jobs/{key}/files/{file_class}",
        READ,
        lambda w: {"url": f"/v1/jobs/{w.key}/files/lb"},
    ),
    (
        "GET",
        "/v1/jobs/{key}/files/{file_class}/errors",
        READ,
        lambda w: {"url": f"/v1/jobs/{w.key}/files/lb/errors"},
    ),
    (
        "POST",
        "/v1/jobs/{key}/tags",
        WRITE,
        lambda w: {"url": f"/v1/jobs/{w.key}/tags", "json": {"name": "t", "value": "v"}},
    ),
    ("GET", "/v1/jobs/{key}/tags", READ, lambda w: {"url": f"/v1/jobs/{w.key}/tags"}),
    ("GET", "/v1/jobs/{key}/attributes", READ, lambda w: {"url": f"/v1/jobs/{w.key}/attributes"}),
    ("GET", "/v1/jobs/{key}/record", READ, lambda w: {"url": f"/v1/jobs/{w.key}/record"}),
    ("GET", "/v1/whoami", EVERYONE | {"anonymous": 401}, lambda w: {"url": "/v1/whoami"}),
    (
        "POST",
        "/v1/feeds",
        FEEDS | {"indexer": 201, "admin": 201},
        lambda w: {"url": "/v1/feeds", "json": FEED_BODY},
    ),
    ("GET", "/v1/feeds", FEEDS | {"indexer": 200, "admin": 200}, lambda w: {"url": "/v1/feeds"}),
    (
        "GET",
        "/v1/feeds/{feed_id}",
        FEEDS | {"indexer": 200, "admin": 200},
        lambda w: {"url": f"/v1/feeds/{w.feed()}"},
    ),
    (
        "POST",
        "/v1/feeds/{feed_id}/refresh",
        FEEDS | {"indexer": 200},
        lambda w: {"url": f"/v1/feeds/{w.feed()}/refresh"},
    ),
    (
        "DELETE",
        "/v1/feeds/{feed_id}",
        FEEDS | {"indexer": 204, "admin": 204},
        lambda w: {"url": f"/v1/feeds/{w.feed()}"},
    ),
    (
        "GET",
        "/v1/feeds/{feed_id}/changes",
        FEEDS | {"indexer": 200},
        lambda w: {"url": f"/v1/feeds/{w.feed()}/changes"},
    ),
    (
        "POST",
        "/v1/query",
        EVERYONE | {"anonymous": 401},  # owners get their own jobs, the others all of them
        lambda w: {
            "url": "/v1/query",
            "json": {"where": [{"attr": "system:jobId", "op": "eq", "value": w.jobid}]},
        },
    ),
    (
        "POST",
        "/v1/files/bulk",
        dict.fromkeys(WHO, 403) | {"anonymous": 401, "trusted": 200},
        lambda w: {
            "url": "/v1/files/bulk",
            "files": [
                (
                    "manifest",
                    (None, b'{"files": [{"jobid": "%s", "class": "osb"}]}' % w.jobid.encode()),
                ),
                ("file", ("f", b"x")),
            ],
        },
    ),
    (
        "POST",
        "/v1/jobs/attributes",
        EVERYONE | {"anonymous": 401},  # jobs the caller may not read are listed as forbidden
        lambda w: {"url": "/v1/jobs/attributes", "json": {"keys": [w.key]}},
    ),
    (
        "GET",
        "/v1/admin/quarantine",
        dict.fromkeys(WHO, 403) | {"anonymous": 401, "admin": 200},
        lambda w: {"url": "/v1/admin/quarantine"},
    ),
    ("GET", "/v1/jobs/{key}/prov", READ, lambda w: {"url": f"/v1/jobs/{w.key}/prov"}),
    ("GET", "/v1/jobs/{key}/ro-crate", READ, lambda w: {"url": f"/v1/jobs/{w.key}/ro-crate"}),
    ("GET", "/docs", EVERYONE, lambda w: {"url": "/docs"}),
    ("GET", "/redoc", EVERYONE, lambda w: {"url": "/redoc"}),
    ("GET", "/docs/assets/{name}", EVERYONE, lambda w: {"url": "/docs/assets/swagger-ui.css"}),
    ("GET", "/ui/", EVERYONE, lambda w: {"url": "/ui/"}),
    ("GET", "/ui/static/{name}", EVERYONE, lambda w: {"url": "/ui/static/ui.css"}),
    ("GET", "/ui/sign-in", EVERYONE, lambda w: {"url": "/ui/sign-in"}),
    (
        "POST",
        "/ui/sign-in",
        dict.fromkeys(WHO, 303),
        lambda w: (
            CSRF
            | {
                "url": "/ui/sign-in",
                "data": {"csrf": "matrix", "token": w.api.tokens.issue(BOB, ())},
            }
        ),
    ),
    (
        "POST",
        "/ui/sign-out",
        dict.fromkeys(WHO, 303),
        lambda w: CSRF | {"url": "/ui/sign-out", "data": {"csrf": "matrix"}},
    ),
    (
        "GET",
        "/ui/search",
        READ | {"anonymous": 303, "owner": 303, "trusted": 303, "admin": 303},
        lambda w: {"url": "/ui/search", "params": {"jobid": w.jobid}},
    ),
    ("GET", "/ui/jobs/{key}", PAGE_READ, lambda w: {"url": f"/ui/jobs/{w.key}"}),
    (
        "POST",
        "/ui/jobs/{key}/tags",
        # Anonymous: to the sign-in page, as a page of the web view (tests/api/test_web.py).
        WRITE | {"owner": 303, "trusted": 303, "anonymous": 303},
        lambda w: (
            CSRF
            | {
                "url": f"/ui/jobs/{w.key}/tags",
                "data": {"csrf": "matrix", "name": "t", "value": "v"},
            }
        ),
    ),
    ("GET", "/ui/jobs/{key}/prov", PAGE_READ, lambda w: {"url": f"/ui/jobs/{w.key}/prov"}),
    ("GET", "/ui/jobs/{key}/ro-crate", PAGE_READ, lambda w: {"url": f"/ui/jobs/{w.key}/ro-crate"}),
    (
        "GET",
        "/ui/jobs/{key}/files/{file_class}",
        PAGE_READ,
        lambda w: {"url": f"/ui/jobs/{w.key}/files/lb"},
    ),
]


def test_the_matrix_covers_every_route() -> None:
    declared = {(m, r.path) for r in api_routes() for m in r.methods}
    assert declared == {(method, path) for method, path, _, _ in CASES}


@pytest.mark.parametrize(
    ("method", "path", "expected", "build"), CASES, ids=[f"{c[0]} {c[1]}" for c in CASES]
)
def test_route_answers_each_identity_as_the_api_says(
    world: World,
    method: str,
    path: str,
    expected: dict[str, int],
    build: Callable[[World], dict],  # type: ignore[type-arg]
) -> None:
    got = {}
    for who in WHO:
        request = build(world)
        headers = {} if who == "anonymous" else world.api.auth(*SUBJECTS[who])  # type: ignore[arg-type]
        headers |= request.pop("headers", {})
        world.api.client.cookies.clear()  # no web-view sign-in carries over to the next caller
        response = world.api.client.request(
            method, headers=headers, follow_redirects=False, **request
        )
        got[who] = response.status_code
        html = response.headers.get("content-type", "").startswith("text/html")
        if response.status_code >= 400 and path.startswith("/ui/") and html:
            assert "<h1>" in response.text  # the web view's error page
        elif response.status_code >= 400:
            assert set(response.json()) >= {"error", "detail"}
    assert got == expected
