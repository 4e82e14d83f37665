from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from jp_primary.auth.identity import Role
from jp_primary.auth.issuers import load_issuers
from jp_primary.errors import ConfigurationError, Unauthenticated

from .conftest import SCITOKENS_URL, WLCG_URL
from .issuerkeys import IssuerSigner, rsa_issuer, write_jwks


def test_wlcg_token_maps_sub_groups_and_scopes(
    issuers_file: Path, wlcg_issuer: IssuerSigner
) -> None:
    token = wlcg_issuer.token(**{"wlcg.groups": ["/jp", "/jp/services"], "scope": "jp.index x"})
    identity = load_issuers(issuers_file).verify(token, WLCG_URL)
    assert identity.subject == f"{WLCG_URL}#user-42"
    assert identity.issuer == WLCG_URL
    assert identity.groups == frozenset({"/jp", "/jp/services"})
    assert identity.roles == frozenset({Role.INDEXER})
    assert identity.method == "token"


def test_second_issuer_with_pem_key_and_es256(
    issuers_file: Path, scitokens_issuer: IssuerSigner
) -> None:
    identity = load_issuers(issuers_file).verify(scitokens_issuer.token(sub="abc"), SCITOKENS_URL)
    assert identity.subject == f"{SCITOKENS_URL}#abc"
    assert identity.roles == frozenset()  # scope_roles are per issuer


def test_any_configured_audience_is_accepted(issuers_file: Path, wlcg_issuer: IssuerSigner) -> None:
    token = wlcg_issuer.token(aud=["https://other", "https://wlcg.cern.ch/jwt/v1/any"])
    assert load_issuers(issuers_file).verify(token, WLCG_URL).subject.endswith("#user-42")


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        ({"aud": "https://elsewhere.example.org"}, jwt.InvalidAudienceError),
        ({"aud": None}, jwt.MissingRequiredClaimError),
        ({"exp": datetime.now(UTC) - timedelta(minutes=5)}, jwt.ExpiredSignatureError),
        # A day ahead: the list is built at collection, minutes before a long suite reaches it.
        ({"nbf": datetime.now(UTC) + timedelta(days=1)}, jwt.ImmatureSignatureError),
        ({"sub": None}, jwt.MissingRequiredClaimError),
    ],
)
def test_invalid_claims_are_refused(
    issuers_file: Path, wlcg_issuer: IssuerSigner, claims: dict[str, object], error: type
) -> None:
    with pytest.raises(error):
        load_issuers(issuers_file).verify(wlcg_issuer.token(**claims), WLCG_URL)


def test_bad_signature_is_refused(issuers_file: Path, impostor_key: IssuerSigner) -> None:
    with pytest.raises(jwt.InvalidSignatureError):
        load_issuers(issuers_file).verify(impostor_key.token(), WLCG_URL)


def test_token_of_one_issuer_signed_by_another_is_refused(
    issuers_file: Path, scitokens_issuer: IssuerSigner
) -> None:
    token = scitokens_issuer.token(iss=WLCG_URL)  # ES256 key; WLCG only knows its RSA key
    with pytest.raises(jwt.PyJWTError):
        load_issuers(issuers_file).verify(token, WLCG_URL)


def test_unknown_issuer_is_unauthenticated(issuers_file: Path) -> None:
    stranger = rsa_issuer("https://stranger.example.org")
    with pytest.raises(Unauthenticated, match="issuer"):
        load_issuers(issuers_file).verify(stranger.token(), stranger.url)


def test_key_is_chosen_by_kid_among_several(tmp_path: Path) -> None:
    old, new = rsa_issuer(WLCG_URL, kid="old"), rsa_issuer(WLCG_URL, kid="new")
    write_jwks(tmp_path / "k.jwks", old, new)
    config = tmp_path / "i.toml"
    config.write_text(f'[[issuers]]\nissuer = "{WLCG_URL}"\naudience = "a"\njwks_file = "k.jwks"\n')
    issuers = load_issuers(config)
    assert issuers.verify(old.token(aud="a"), WLCG_URL).subject.endswith("#user-42")
    assert issuers.verify(new.token(aud="a"), WLCG_URL).subject.endswith("#user-42")
    forged = rsa_issuer(WLCG_URL, kid="new")
    with pytest.raises(jwt.InvalidSignatureError):
        issuers.verify(forged.token(aud="a"), WLCG_URL)


def test_alg_none_is_never_accepted(issuers_file: Path) -> None:
    token = jwt.encode(
        {"iss": WLCG_URL, "sub": "x", "aud": "https://jp.example.org", "exp": 4102444800},
        key=None,
        algorithm="none",
    )
    with pytest.raises(jwt.PyJWTError):
        load_issuers(issuers_file).verify(token, WLCG_URL)


@pytest.mark.parametrize(
    "body",
    [
        '[[issuers]]\naudience = "a"\npem_file = "k.pem"\n',
        '[[issuers]]\nissuer = "https://x"\npem_file = "k.pem"\n',
        '[[issuers]]\nissuer = "https://x"\naudience = "a"\n',
        '[[issuers]]\nissuer = "https://x#y"\naudience = "a"\npem_file = "k.pem"\n',
        '[[issuers]]\nissuer = "https://x"\naudience = "a"\npem_file = "missing.pem"\n',
        '[[issuers]]\nissuer = "https://x"\naudience = "a"\npem_file = "k.pem"\n'
        'algorithms = ["HS256"]\n',
        '[[issuers]]\nissuer = "https://x"\naudience = "a"\npem_file = "k.pem"\n'
        '[issuers.scope_roles]\n"s" = "superuser"\n',
        "issuers = 3\n",
        "not toml [",
    ],
)
def test_bad_issuer_configuration_refuses_to_start(tmp_path: Path, body: str) -> None:
    (tmp_path / "k.pem").write_bytes(rsa_issuer("https://x").public_pem())
    config = tmp_path / "i.toml"
    config.write_text(body)
    with pytest.raises(ConfigurationError):
        load_issuers(config)


def test_no_file_means_no_external_issuers() -> None:
    assert len(load_issuers(None)) == 0
