from __future__ import annotations

from pathlib import Path

import pytest

from .certs import GridPKI, make_pki
from .issuerkeys import IssuerSigner, ec_issuer, rsa_issuer, write_jwks, write_pem

WLCG_URL = "https://wlcg.example.org/"
SCITOKENS_URL = "https://scitokens.example.org"
AUDIENCE = "https://jp.example.org"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GridPKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def wlcg_issuer() -> IssuerSigner:
    return rsa_issuer(WLCG_URL)


@pytest.fixture(scope="session")
def scitokens_issuer() -> IssuerSigner:
    return ec_issuer(SCITOKENS_URL)


@pytest.fixture(scope="session")
def impostor_key() -> IssuerSigner:
    """Claims to be the WLCG issuer (same URL and kid) but signs with a key nobody configured."""
    return rsa_issuer(WLCG_URL)


@pytest.fixture
def issuers_file(tmp_path: Path, wlcg_issuer: IssuerSigner, scitokens_issuer: IssuerSigner) -> Path:
    write_jwks(tmp_path / "wlcg.jwks", wlcg_issuer)
    write_pem(tmp_path / "scitokens.pem", scitokens_issuer)
    path = tmp_path / "issuers.toml"
    path.write_text(
        f"""
[[issuers]]
issuer = "{WLCG_URL}"
audience = ["{AUDIENCE}", "https://wlcg.cern.ch/jwt/v1/any"]
jwks_file = "wlcg.jwks"
[issuers.scope_roles]
"jp.index" = "indexer"

[[issuers]]
issuer = "{SCITOKENS_URL}"
audience = "{AUDIENCE}"
pem_file = "scitokens.pem"
algorithms = ["ES256"]
"""
    )
    return path
