from __future__ import annotations

from jp_primary.auth.identity import Role
from tests.helpers import ALICE, LB_HOST, Api


def test_whoami_describes_the_caller(api: Api) -> None:
    response = api.client.get("/v1/whoami", headers=api.auth(LB_HOST, Role.TRUSTED, Role.ADMIN))
    assert response.status_code == 200
    assert response.json() == {
        "subject": LB_HOST,
        "roles": ["admin", "trusted"],
        "groups": [],
        "fqans": [],
        "authenticated_by": "token",
        "issuer": "jp-primary",
    }
    assert api.client.get("/v1/whoami", headers=api.auth(ALICE)).json()["roles"] == []


def test_whoami_needs_an_identity_and_never_echoes_the_credential(api: Api) -> None:
    assert api.client.get("/v1/whoami").status_code == 401
    headers = api.auth(ALICE)
    body = api.client.get("/v1/whoami", headers=headers).text
    assert headers["Authorization"].split()[1] not in body
