from __future__ import annotations

from pathlib import Path

import pytest

from jp_primary.auth.authenticate import (
    Authenticator,
    Credentials,
    build_authenticator,
    credentials_from_scope,
)
from jp_primary.auth.identity import Role
from jp_primary.auth.tokens import ServiceTokens, load_or_create_key
from jp_primary.config import AuthSettings, ServerSettings, Settings
from jp_primary.errors import ConfigurationError, Unauthenticated

from .certs import GridPKI
from .conftest import WLCG_URL
from .issuerkeys import IssuerSigner

ALICE = "/DC=org/DC=example/O=JP Test/CN=Alice Smith/CN=12345"
BOB = "/DC=org/DC=example/O=JP Test/CN=Bob Jones/CN=67890"
HEADER = "X-SSL-Client-S-DN"


@pytest.fixture
def settings(tmp_path: Path, issuers_file: Path) -> Settings:
    policy = tmp_path / "policy.toml"
    policy.write_text(
        f'[trusted]\ndns = ["{ALICE}"]\n'
        f'[admin]\ntokens = [{{ issuer = "{WLCG_URL}", sub = "boss" }}]\n'
        '[indexer]\nsubjects = ["svc"]\n'
    )
    return Settings(
        server=ServerSettings(home=tmp_path / "home"),
        auth=AuthSettings(
            policy_file=policy,
            issuers_file=issuers_file,
            trusted_frontends=["127.0.0.1"],
        ),
    )


@pytest.fixture
def authenticator(settings: Settings) -> Authenticator:
    return build_authenticator(settings)


@pytest.fixture
def service_tokens(settings: Settings, authenticator: Authenticator) -> ServiceTokens:
    # The key was created by build_authenticator; a second reader gets the same key.
    return ServiceTokens(load_or_create_key(settings.token_key_path))


def chain(pki: GridPKI, name: str) -> list[bytes]:
    return [*getattr(pki, name).chain_pems, pki.ca.cert_pem]


def test_anonymous_without_credentials(authenticator: Authenticator) -> None:
    assert authenticator.authenticate(Credentials(peer_host="127.0.0.1")) is None


def test_service_token_keeps_its_roles_and_gets_policy_roles(
    authenticator: Authenticator, service_tokens: ServiceTokens
) -> None:
    token = service_tokens.issue("svc", roles=[Role.TRUSTED])
    identity = authenticator.authenticate(Credentials(bearer=token))
    assert identity is not None
    assert identity.subject == "svc"
    assert identity.roles == {Role.TRUSTED, Role.INDEXER}


def test_external_token_with_policy_role(
    authenticator: Authenticator, wlcg_issuer: IssuerSigner
) -> None:
    identity = authenticator.authenticate(Credentials(bearer=wlcg_issuer.token(sub="boss")))
    assert identity is not None
    assert identity.subject == f"{WLCG_URL}#boss"
    assert identity.roles == {Role.ADMIN}


def test_certificate_chain_with_policy_role(authenticator: Authenticator, pki: GridPKI) -> None:
    identity = authenticator.authenticate(Credentials(tls_chain=chain(pki, "alice_proxy2")))
    assert identity is not None
    assert (identity.subject, identity.method, identity.roles) == (ALICE, "x509", {Role.TRUSTED})


def test_front_end_header_only_from_trusted_peer(authenticator: Authenticator) -> None:
    trusted = Credentials(peer_host="127.0.0.1", headers={HEADER: ALICE})
    identity = authenticator.authenticate(trusted)
    assert identity is not None
    assert (identity.subject, identity.method, identity.roles) == (
        ALICE,
        "frontend",
        {Role.TRUSTED},
    )
    untrusted = Credentials(peer_host="192.0.2.1", headers={HEADER: ALICE})
    assert authenticator.authenticate(untrusted) is None


def test_precedence_bearer_then_chain_then_header(
    authenticator: Authenticator, service_tokens: ServiceTokens, pki: GridPKI
) -> None:
    everything = Credentials(
        bearer=service_tokens.issue("svc"),
        peer_host="127.0.0.1",
        headers={HEADER: BOB},
        tls_chain=chain(pki, "alice"),
    )
    identity = authenticator.authenticate(everything)
    assert identity is not None
    assert identity.subject == "svc"
    no_bearer = Credentials(
        peer_host="127.0.0.1", headers={HEADER: BOB}, tls_chain=chain(pki, "alice")
    )
    identity = authenticator.authenticate(no_bearer)
    assert identity is not None
    assert identity.subject == ALICE


def test_invalid_bearer_is_401_and_never_falls_back(
    authenticator: Authenticator, impostor_key: IssuerSigner, pki: GridPKI
) -> None:
    token = impostor_key.token()
    with pytest.raises(Unauthenticated) as info:
        authenticator.authenticate(Credentials(bearer=token, tls_chain=chain(pki, "alice")))
    assert token not in info.value.detail
    assert token.split(".")[1] not in info.value.detail


@pytest.mark.parametrize("bearer", ["", "garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30."])
def test_malformed_bearer_is_401(authenticator: Authenticator, bearer: str) -> None:
    with pytest.raises(Unauthenticated) as info:
        authenticator.authenticate(Credentials(bearer=bearer))
    assert info.value.status_code == 401
    assert not bearer or bearer not in info.value.detail


def test_token_of_unknown_issuer_is_401(authenticator: Authenticator) -> None:
    from .issuerkeys import rsa_issuer

    with pytest.raises(Unauthenticated, match="issuer"):
        authenticator.authenticate(Credentials(bearer=rsa_issuer("https://nope").token()))


def test_forged_chain_is_401(authenticator: Authenticator, pki: GridPKI) -> None:
    with pytest.raises(Unauthenticated):
        authenticator.authenticate(Credentials(tls_chain=chain(pki, "forged_proxy")))


def test_bad_front_end_address_refuses_to_start(tmp_path: Path) -> None:
    settings = Settings(
        server=ServerSettings(home=tmp_path), auth=AuthSettings(trusted_frontends=["nonsense"])
    )
    with pytest.raises(ConfigurationError):
        build_authenticator(settings)


def test_front_ends_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JP_TRUSTED_FRONTENDS", "127.0.0.1, 10.0.0.0/8")
    monkeypatch.setenv("JP_FRONTEND_DN_HEADER", "X-Client-DN")
    auth = AuthSettings()
    assert auth.trusted_frontends == ["127.0.0.1", "10.0.0.0/8"]
    assert auth.frontend_dn_header == "X-Client-DN"


def test_credentials_from_asgi_scope(pki: GridPKI) -> None:
    scope = {
        "type": "http",
        "client": ("10.0.0.7", 51234),
        "headers": [(b"Authorization", b"bearer abc.def.ghi"), (b"X-SSL-Client-S-DN", b"/O=x")],
        "extensions": {"tls": {"client_cert_chain": [pki.alice.cert_pem.decode()]}},
    }
    creds = credentials_from_scope(scope)
    assert creds.bearer == "abc.def.ghi"
    assert creds.peer_host == "10.0.0.7"
    assert creds.headers["x-ssl-client-s-dn"] == "/O=x"
    assert creds.tls_chain == [pki.alice.cert_pem.decode()]
    plain = credentials_from_scope({"headers": [(b"authorization", b"Basic dTpw")]})
    assert (plain.bearer, plain.peer_host, plain.tls_chain) == (None, None, None)
