"""End to end: the real ``jp-primary migrate``, ``serve`` and ``token`` as subprocesses, over
real TLS with client certificates and RFC 3820 proxies, external-issuer tokens, and trusted front
ends; on SQLite and PostgreSQL (see ``deployment.py`` for what runs).
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from jp_primary.attributes import names
from tests.helpers import ALICE, BOB, LB_HOST, job_body, new_jobid, registered_key

from .certs import GridPKI
from .deployment import ADMIN, AUDIENCE, Deployment, start_deployment, stop_deployment
from .issuerkeys import IssuerSigner

pytestmark = pytest.mark.slow

ALICE_RFC4514 = "CN=12345,CN=Alice Smith,O=JP Test,DC=example,DC=org"
TIMEOUT = 30.0
MakeToken = Callable[[IssuerSigner, IssuerSigner], str]  # (issuer, impostor) -> token


@pytest.fixture(scope="module")
def deployment(
    database_url: str,
    pki: GridPKI,
    wlcg_issuer: IssuerSigner,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployment]:
    d = start_deployment(tmp_path_factory.mktemp("e2e"), database_url, pki, wlcg_issuer)
    try:
        yield d
    finally:
        stop_deployment(d)


def tls(d: Deployment, name: str | None, method: str, path: str, **kw: Any) -> httpx.Response:
    """One request to the TLS listener presenting ``name``'s certificate chain (None: none)."""
    return httpx.request(
        method, d.tls.base_url + path, verify=d.wallet.context(name), timeout=TIMEOUT, **kw
    )


def bearer(d: Deployment, token: str, method: str, path: str, **kw: Any) -> httpx.Response:
    """One request to the TLS listener with a bearer token and no client certificate."""
    d.tokens_sent.append(token)
    return tls(d, None, method, path, headers={"Authorization": f"Bearer {token}"}, **kw)


def via_frontend(
    url: str, dn: str | None, method: str, path: str, source: str = "127.0.0.1", **kw: Any
) -> httpx.Response:
    """A plain-HTTP request from ``source`` carrying the front end's DN header."""
    headers = {} if dn is None else {"X-SSL-Client-S-DN": dn}
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=TIMEOUT) as client:
        return client.request(method, url + path, headers=headers, **kw)


def register_over_tls(d: Deployment, owner: str) -> str:
    """Register a job for ``owner`` as L&B does: its host certificate, owner in slash form."""
    return registered_key(tls(d, "lb_host", "POST", "/v1/jobs", json=job_body(owner=owner)))


@pytest.fixture(scope="module")
def alice_job(deployment: Deployment) -> str:
    return register_over_tls(deployment, ALICE)


# --- certificates and proxies -------------------------------------------------------------


def test_trusted_host_registers_for_an_owner_and_registration_is_idempotent(
    deployment: Deployment,
) -> None:
    jobid = new_jobid()
    first = tls(deployment, "lb_host", "POST", "/v1/jobs", json={"jobid": jobid, "owner": ALICE})
    assert first.status_code == 201
    assert (first.json()["owner"], first.json()["registered_by"]) == (ALICE, LB_HOST)
    again = tls(deployment, "lb_host", "POST", "/v1/jobs", json={"jobid": jobid, "owner": ALICE})
    assert again.status_code == 200
    assert again.json()["key"] == first.json()["key"]
    # Another owner for the same jobid conflicts; a user may not register for someone else.
    other = tls(deployment, "lb_host", "POST", "/v1/jobs", json={"jobid": jobid, "owner": BOB})
    assert other.status_code == 409
    forged = tls(deployment, "bob", "POST", "/v1/jobs", json={"jobid": new_jobid(), "owner": ALICE})
    assert forged.status_code == 403


@pytest.mark.parametrize("credential", ["alice", "alice_proxy", "alice_proxy2"])
def test_owner_reads_tags_and_sees_attributes_through_proxies(
    deployment: Deployment, alice_job: str, credential: str
) -> None:
    job = tls(deployment, credential, "GET", f"/v1/jobs/{alice_job}")
    assert job.status_code == 200
    assert job.json()["owner"] == ALICE
    value = f"set-with-{credential}"
    tagged = tls(
        deployment,
        credential,
        "POST",
        f"/v1/jobs/{alice_job}/tags",
        json={"name": "origin", "value": value},
    )
    assert tagged.status_code == 201
    assert [(t["value"], t["author"]) for t in tagged.json()] == [(value, ALICE)]
    attrs = tls(deployment, credential, "GET", f"/v1/jobs/{alice_job}/attributes")
    assert attrs.status_code == 200
    found = {(v["name"], v["value"]) for v in attrs.json()["values"]}
    assert (names.SYSTEM_OWNER, ALICE) in found
    assert (f"{names.LB_TAG}:origin", value) in found


def test_another_user_is_refused_reading_and_tagging(
    deployment: Deployment, alice_job: str
) -> None:
    for path in (f"/v1/jobs/{alice_job}", f"/v1/jobs/{alice_job}/attributes"):
        assert tls(deployment, "bob", "GET", path).status_code == 403
    tag = {"name": "intruder", "value": "bob"}
    refused = tls(deployment, "bob", "POST", f"/v1/jobs/{alice_job}/tags", json=tag)
    assert refused.status_code == 403
    assert refused.json()["error"] == "Forbidden"
    tags = tls(deployment, "alice", "GET", f"/v1/jobs/{alice_job}/tags").json()
    assert "intruder" not in {t["name"].rsplit(":", 1)[-1] for t in tags}


def test_policy_roles_admin_reads_indexer_does_not(deployment: Deployment, alice_job: str) -> None:
    assert tls(deployment, "admin", "GET", f"/v1/jobs/{alice_job}").json()["owner"] == ALICE
    tag = {"name": "admin-note", "value": "x"}
    # Admins read everything but change nothing; the indexer role grants no job reading.
    assert (
        tls(deployment, "admin", "POST", f"/v1/jobs/{alice_job}/tags", json=tag).status_code == 403
    )
    assert tls(deployment, "indexer", "GET", f"/v1/jobs/{alice_job}").status_code == 403
    bulk = {"jobs": [{"jobid": new_jobid(), "owner": ALICE}]}
    assert tls(deployment, "indexer", "POST", "/v1/jobs/bulk", json=bulk).status_code == 403
    assert tls(deployment, "admin", "POST", "/v1/jobs/bulk", json=bulk).status_code == 403
    done = tls(deployment, "lb_host", "POST", "/v1/jobs/bulk", json=bulk)
    assert [r["status"] for r in done.json()["results"]] == [201]


def test_anonymous_tls_client_gets_401(deployment: Deployment, alice_job: str) -> None:
    assert tls(deployment, None, "GET", "/healthz").status_code == 200
    response = tls(deployment, None, "GET", f"/v1/jobs/{alice_job}")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"] == "Unauthenticated"
    created = tls(deployment, None, "POST", "/v1/jobs", json={"jobid": new_jobid()})
    assert created.status_code == 401


@pytest.mark.parametrize(
    "credential",
    ["stranger", "forged_proxy", "expired"],
    ids=["unknown-ca", "proxy-signed-by-wrong-user", "expired"],
)
def test_bad_certificates_cannot_connect(
    deployment: Deployment, alice_job: str, credential: str
) -> None:
    before = deployment.tls.log()
    with pytest.raises(httpx.TransportError):
        tls(deployment, credential, "GET", f"/v1/jobs/{alice_job}")
    # Defect 17 (issue 14): the refusal is logged with its reason and the peer address.
    reason = {
        "stranger": "unable to get local issuer certificate",
        "forged_proxy": "certificate signature failure",
        "expired": "certificate has expired",
    }[credential]
    logged = _eventually(lambda: deployment.tls.log()[len(before) :], reason)
    assert re.search(
        r"TLS handshake with 127\.0\.0\.1:\d+ refused: client certificate refused: " + reason,
        logged,
    ), logged
    assert "BEGIN" not in logged
    for key in deployment.wallet.private_keys():
        assert key.decode().splitlines()[1] not in logged
    # The listener is unharmed: the owner still gets in.
    assert tls(deployment, "alice_proxy", "GET", f"/v1/jobs/{alice_job}").status_code == 200


def test_a_bad_token_is_refused_even_with_a_good_certificate(
    deployment: Deployment, alice_job: str
) -> None:
    headers = {"Authorization": "Bearer not.a.token"}
    response = tls(deployment, "alice", "GET", f"/v1/jobs/{alice_job}", headers=headers)
    assert response.status_code == 401


# --- bearer tokens over the same TLS listener ------------------------------------------------


def test_external_issuer_token_registers_and_reads_its_own_job(
    deployment: Deployment, wlcg_issuer: IssuerSigner, alice_job: str
) -> None:
    subject = f"{wlcg_issuer.url}#e2e-user-7"
    token = wlcg_issuer.token(sub="e2e-user-7", aud=AUDIENCE)
    created = bearer(deployment, token, "POST", "/v1/jobs", json={"jobid": new_jobid()})
    key = registered_key(created)
    assert created.json()["owner"] == subject
    attrs = bearer(
        deployment, token, "GET", f"/v1/jobs/{key}/attributes", params={"name": "jp:owner"}
    )
    assert attrs.status_code == 200
    assert [v["value"] for v in attrs.json()["values"]] == [subject]
    # A later token of the same issuer and sub is the same owner.
    again = wlcg_issuer.token(sub="e2e-user-7", aud=AUDIENCE, jti="second")
    assert bearer(deployment, again, "GET", f"/v1/jobs/{key}").json()["owner"] == subject
    # The token's subject is not the certificate owner, and vice versa.
    assert bearer(deployment, token, "GET", f"/v1/jobs/{alice_job}").status_code == 403
    assert tls(deployment, "alice", "GET", f"/v1/jobs/{key}").status_code == 403


def test_whoami_shows_the_groups_of_an_external_token(
    deployment: Deployment, wlcg_issuer: IssuerSigner
) -> None:
    token = wlcg_issuer.token(sub="e2e-user-8", aud=AUDIENCE, **{"wlcg.groups": ["/jp", "/jp/a"]})
    body = bearer(deployment, token, "GET", "/v1/whoami").json()
    assert body == {
        "subject": f"{wlcg_issuer.url}#e2e-user-8",
        "roles": [],
        "groups": ["/jp", "/jp/a"],
        "fqans": [],
        "authenticated_by": "token",
        "issuer": wlcg_issuer.url,
    }
    certificate = tls(deployment, "alice", "GET", "/v1/whoami").json()
    assert certificate["authenticated_by"] == "x509"
    assert certificate["fqans"] == []


def _expired(issuer: IssuerSigner) -> str:
    past = datetime.now(UTC) - timedelta(hours=2)
    return issuer.token(aud=AUDIENCE, iat=past, nbf=past, exp=past + timedelta(minutes=30))


def _tampered(issuer: IssuerSigner) -> str:
    """A genuine token whose subject was changed after signing."""
    head, body, signature = issuer.token(aud=AUDIENCE).split(".")
    claims = base64.urlsafe_b64decode(body + "==").replace(b"user-42", b"user-43")
    assert b"user-43" in claims
    forged = base64.urlsafe_b64encode(claims).rstrip(b"=").decode()
    return f"{head}.{forged}.{signature}"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda i, imp: i.token(aud="https://other.example.org"), "audience"),
        (lambda i, imp: _expired(i), "expired"),
        (lambda i, imp: imp.token(aud=AUDIENCE), "signature"),
        (lambda i, imp: _tampered(i), "signature"),
        (lambda i, imp: i.token(aud=AUDIENCE, iss="https://elsewhere.example.org/"), "issuer"),
    ],
    ids=["wrong-audience", "expired", "unknown-key", "tampered", "unknown-issuer"],
)
def test_invalid_external_tokens_get_401_without_echoing_the_token(
    deployment: Deployment,
    wlcg_issuer: IssuerSigner,
    impostor_key: IssuerSigner,
    alice_job: str,
    make: MakeToken,
    reason: str,
) -> None:
    token = make(wlcg_issuer, impostor_key)
    response = bearer(deployment, token, "GET", f"/v1/jobs/{alice_job}")
    assert response.status_code == 401
    detail = response.json()["detail"]
    assert reason in detail.lower()
    assert all(part not in response.text for part in token.split("."))


def test_service_token_from_the_command_line(deployment: Deployment, alice_job: str) -> None:
    importer = deployment.service_token("importer", "trusted")
    created = bearer(
        deployment, importer, "POST", "/v1/jobs", json={"jobid": new_jobid(), "owner": BOB}
    )
    key = registered_key(created)
    assert tls(deployment, "bob", "GET", f"/v1/jobs/{key}").json()["registered_by"] == "importer"
    assert tls(deployment, "alice_proxy2", "GET", f"/v1/jobs/{key}").status_code == 403
    alice_token = deployment.service_token(ALICE)
    assert bearer(deployment, alice_token, "GET", f"/v1/jobs/{alice_job}").status_code == 200


# --- the web view on the TLS listener ------------------------------------------------------


def test_web_view_signs_in_with_the_client_certificate(
    deployment: Deployment, alice_job: str
) -> None:
    home = tls(deployment, "alice_proxy", "GET", "/ui/")
    assert home.status_code == 200
    assert f'id="who">{ALICE}</strong>' in home.text
    assert "(client certificate)" in home.text
    assert tls(deployment, "alice_proxy", "GET", f"/ui/jobs/{alice_job}").status_code == 200
    forbidden = tls(deployment, "bob", "GET", f"/ui/jobs/{alice_job}")
    assert forbidden.status_code == 403
    assert "<h1>Not allowed</h1>" in forbidden.text


def test_web_view_token_cookie_is_secure_over_tls(deployment: Deployment, alice_job: str) -> None:
    token = deployment.service_token(ALICE)
    deployment.tokens_sent.append(token)
    with httpx.Client(
        base_url=deployment.tls.base_url, verify=deployment.wallet.context(None), timeout=TIMEOUT
    ) as client:
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/ui/sign-in").text)
        assert csrf is not None
        signed = client.post("/ui/sign-in", data={"csrf": csrf.group(1), "token": token})
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"]
        assert "jp_ui_token=" in cookie
        assert "Secure" in cookie
        assert "HttpOnly" in cookie
        assert client.get(f"/ui/jobs/{alice_job}").status_code == 200


# --- trusted front ends --------------------------------------------------------------------


@pytest.mark.parametrize("dn", [ALICE, ALICE_RFC4514], ids=["slash", "rfc4514"])
def test_trusted_front_end_header_is_believed(
    deployment: Deployment, alice_job: str, dn: str
) -> None:
    url = deployment.frontend.base_url
    job = via_frontend(url, dn, "GET", f"/v1/jobs/{alice_job}")
    assert job.status_code == 200
    assert job.json()["owner"] == ALICE
    assert via_frontend(url, BOB, "GET", f"/v1/jobs/{alice_job}").status_code == 403
    assert via_frontend(url, ADMIN, "GET", f"/v1/jobs/{alice_job}").status_code == 200
    assert via_frontend(url, None, "GET", f"/v1/jobs/{alice_job}").status_code == 401


def test_front_end_identities_get_policy_roles(deployment: Deployment) -> None:
    url = deployment.frontend.base_url
    body = {"jobid": new_jobid(), "owner": ALICE}
    created = via_frontend(url, LB_HOST, "POST", "/v1/jobs", json=body)
    assert created.status_code == 201
    assert (created.json()["owner"], created.json()["registered_by"]) == (ALICE, LB_HOST)


def test_header_is_ignored_from_other_peers_and_by_other_servers(
    deployment: Deployment, alice_job: str
) -> None:
    path = f"/v1/jobs/{alice_job}"
    # 127.0.0.2 is loopback too, but not the configured front end.
    ignored = via_frontend(deployment.frontend.base_url, ALICE, "GET", path, source="127.0.0.2")
    assert ignored.status_code == 401
    assert via_frontend(deployment.plain.base_url, ALICE, "GET", path).status_code == 401
    headers = {"X-SSL-Client-S-DN": ALICE}
    assert tls(deployment, None, "GET", path, headers=headers).status_code == 401
    # With a certificate, the certificate decides.
    assert tls(deployment, "bob", "GET", path, headers=headers).status_code == 403


# --- logs (kept last: it also checks every token the tests above sent) ----------------------


def test_no_credentials_in_server_logs(deployment: Deployment, alice_job: str) -> None:
    own = deployment.service_token(ALICE)
    assert bearer(deployment, own, "GET", f"/v1/jobs/{alice_job}").status_code == 200
    assert bearer(deployment, own[:-4] + "AAAA", "GET", f"/v1/jobs/{alice_job}").status_code == 401
    logs = {s.log_path.name: s.log() for s in deployment.servers}
    assert all("jp_primary listening on" in text for text in logs.values()), logs
    key_material = [
        line
        for pem in deployment.wallet.private_keys()
        for line in pem.decode().splitlines()
        if not line.startswith("-----")
    ]
    signing_key = (deployment.home / "token.key").read_text().strip()
    for name, text in logs.items():
        assert "PRIVATE KEY" not in text, name
        assert signing_key not in text, name
        assert not [line for line in key_material if line in text], name
        for token in deployment.tokens_sent:
            assert all(part not in text for part in token.split(".")), name


def _eventually(read: Callable[[], str], text: str, timeout: float = 5.0) -> str:
    """The server logs a refusal right after the client gave up: wait for the line."""
    deadline = time.monotonic() + timeout
    while text not in (found := read()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found
