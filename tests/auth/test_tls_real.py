"""Real TLS: a uvicorn subprocess with ``tls_uvicorn_kwargs``; httpx clients with certificates."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jp_primary.auth.identity import Role
from jp_primary.auth.tokens import ServiceTokens, load_or_create_key

from .certs import GridPKI, make_crl
from .tlsserver import run_tls_server

pytestmark = pytest.mark.slow

ALICE = "/DC=org/DC=example/O=JP Test/CN=Alice Smith/CN=12345"
BOB = "/DC=org/DC=example/O=JP Test/CN=Bob Jones/CN=67890"
HERE = Path(__file__).parent


def _server(pki: GridPKI, home: Path, **tls: Any) -> Iterator[tuple[str, Path]]:
    policy = home.parent / "policy.toml"
    policy.write_text(f'[indexer]\ndns = ["{ALICE}"]\n')
    cert, key = pki.files("host")
    env = {"JP_HOME": str(home), "JP_POLICY_FILE": str(policy)}
    with run_tls_server(
        "echo_app:app", HERE, {"tls_cert": cert, "tls_key": key, **tls}, env
    ) as url:
        yield url, home


@pytest.fixture(scope="module")
def required_server(
    pki: GridPKI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """httptools protocol, --ca-file, --client-cert required."""
    home = tmp_path_factory.mktemp("required") / "home"
    yield from _server(pki, home, ca_file=pki.ca_file, client_cert="required", http="httptools")


@pytest.fixture(scope="module")
def optional_server(
    pki: GridPKI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """h11 protocol, --ca-dir with a hashed-name CA file, --client-cert optional."""
    folder = tmp_path_factory.mktemp("optional")
    ca_dir = folder / "certificates"
    ca_dir.mkdir()
    (ca_dir / "3f2a1b4c.0").write_bytes(pki.ca.cert_pem)
    yield from _server(pki, folder / "home", ca_dir=ca_dir, client_cert="optional", http="h11")


@pytest.fixture(params=["required_server", "optional_server"])
def server(request: pytest.FixtureRequest) -> tuple[str, Path]:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


def client_context(pki: GridPKI, name: str | None, tls12: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca_file))
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if name is not None:
        cert, key = pki.files(name)
        ctx.load_cert_chain(cert, key)
    return ctx


def get(url: str, ctx: ssl.SSLContext, **kwargs: Any) -> httpx.Response:
    return httpx.get(url + "/whoami", verify=ctx, timeout=10, **kwargs)


@pytest.mark.parametrize(
    ("name", "presented"), [("alice", 1), ("alice_proxy", 2), ("alice_proxy2", 3)]
)
def test_eec_and_proxies_are_mapped_to_the_eec_dn(
    server: tuple[str, Path], pki: GridPKI, name: str, presented: int
) -> None:
    response = get(server[0], client_context(pki, name))
    assert response.status_code == 200
    body = response.json()
    assert body["subject"] == ALICE
    assert body["method"] == "x509"
    assert body["roles"] == ["indexer"]  # from the policy file, matched on the EEC DN
    assert body["chain_length"] == presented + 1  # verified chain includes the CA
    assert body["tls_version"] == 0x304


def test_another_user_gets_their_own_dn(server: tuple[str, Path], pki: GridPKI) -> None:
    body = get(server[0], client_context(pki, "bob")).json()
    assert (body["subject"], body["roles"]) == (BOB, [])


@pytest.mark.parametrize("name", ["forged_proxy", "stranger", "expired"])
@pytest.mark.parametrize("tls12", [False, True], ids=["tls1.3", "tls1.2"])
def test_bad_certificates_fail_the_connection(
    server: tuple[str, Path], pki: GridPKI, name: str, tls12: bool
) -> None:
    with pytest.raises(httpx.TransportError):
        get(server[0], client_context(pki, name, tls12))


def test_proxy_over_tls12(required_server: tuple[str, Path], pki: GridPKI) -> None:
    body = get(required_server[0], client_context(pki, "alice_proxy2", tls12=True)).json()
    assert (body["subject"], body["tls_version"]) == (ALICE, 0x303)


def test_required_client_cert_refuses_clients_without_one(
    required_server: tuple[str, Path], pki: GridPKI
) -> None:
    with pytest.raises(httpx.TransportError):
        get(required_server[0], client_context(pki, None))


def test_optional_client_cert_serves_anonymous_clients(
    optional_server: tuple[str, Path], pki: GridPKI
) -> None:
    response = get(optional_server[0], client_context(pki, None))
    assert response.status_code == 200
    assert response.json()["anonymous"] is True
    assert response.json()["chain_length"] == 0


def test_bearer_token_over_tls_without_certificate(
    optional_server: tuple[str, Path], pki: GridPKI
) -> None:
    url, home = optional_server
    token = ServiceTokens(load_or_create_key(home / "token.key")).issue("svc", roles=[Role.TRUSTED])
    headers = {"Authorization": f"Bearer {token}"}
    body = get(url, client_context(pki, None), headers=headers).json()
    assert (body["subject"], body["method"], body["roles"]) == ("svc", "token", ["trusted"])
    bad = get(url, client_context(pki, None), headers={"Authorization": "Bearer x.y.z"})
    assert bad.status_code == 401
    assert bad.json()["error"] == "Unauthenticated"


def test_identity_holds_for_every_request_on_a_kept_alive_connection(
    server: tuple[str, Path], pki: GridPKI
) -> None:
    with httpx.Client(verify=client_context(pki, "alice_proxy"), timeout=10) as client:
        subjects = [client.get(server[0] + f"/r{i}").json()["subject"] for i in range(3)]
    assert subjects == [ALICE] * 3


def test_several_workers_share_the_tls_setup(pki: GridPKI, tmp_path: Path) -> None:
    # uvicorn pickles its config (with our context factory) into each worker process.
    cert, key = pki.files("host")
    tls = {"tls_cert": cert, "tls_key": key, "ca_file": pki.ca_file}
    env = {"JP_HOME": str(tmp_path / "home")}
    with run_tls_server("echo_app:app", HERE, tls, env, uvicorn_kwargs={"workers": 2}) as url:
        for _ in range(4):  # new connections, spread over the workers
            assert get(url, client_context(pki, "alice_proxy2")).json()["subject"] == ALICE
        with pytest.raises(httpx.TransportError):
            get(url, client_context(pki, "forged_proxy"))


def test_revoked_certificates_fail_when_the_ca_dir_has_crls(pki: GridPKI, tmp_path: Path) -> None:
    ca_dir = tmp_path / "certificates"
    ca_dir.mkdir()
    (ca_dir / "3f2a1b4c.0").write_bytes(pki.ca.cert_pem)
    (ca_dir / "3f2a1b4c.r0").write_bytes(make_crl(pki.ca, revoked=[pki.bob]))
    cert, key = pki.files("host")
    tls = {"tls_cert": cert, "tls_key": key, "ca_dir": ca_dir}
    with run_tls_server("echo_app:app", HERE, tls, {"JP_HOME": str(tmp_path / "home")}) as url:
        # Proxies need no CRL of their own: only the CA-issued certificates are checked.
        assert get(url, client_context(pki, "alice_proxy2")).json()["subject"] == ALICE
        with pytest.raises(httpx.TransportError):
            get(url, client_context(pki, "bob"))
