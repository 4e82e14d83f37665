"""Signing keys and key files of external token issuers, for tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass
class IssuerSigner:
    url: str
    key: PrivateKey
    algorithm: str
    kid: str | None = None

    def token(self, **claims: Any) -> str:
        """A token with sensible defaults (valid for an hour); ``claims`` override or add."""
        now = datetime.now(UTC)
        base: dict[str, Any] = {
            "iss": self.url,
            "sub": "user-42",
            "aud": "https://jp.example.org",
            "iat": now,
            "nbf": now - timedelta(seconds=5),
            "exp": now + timedelta(hours=1),
        }
        base.update(claims)
        payload = {k: v for k, v in base.items() if v is not None}
        headers = {"kid": self.kid} if self.kid else None
        return jwt.encode(payload, self.key, algorithm=self.algorithm, headers=headers)

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwk(self) -> dict[str, Any]:
        if isinstance(self.key, rsa.RSAPrivateKey):
            jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        else:
            jwk = json.loads(ECAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"alg": self.algorithm, "use": "sig"} | ({"kid": self.kid} if self.kid else {}))
        return dict(jwk)


def rsa_issuer(url: str, kid: str | None = "rsa-1") -> IssuerSigner:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return IssuerSigner(url, key, "RS256", kid)


def ec_issuer(url: str, kid: str | None = None) -> IssuerSigner:
    return IssuerSigner(url, ec.generate_private_key(ec.SECP256R1()), "ES256", kid)


def write_jwks(path: Path, *issuers: IssuerSigner) -> Path:
    path.write_text(json.dumps({"keys": [i.jwk() for i in issuers]}))
    return path


def write_pem(path: Path, issuer: IssuerSigner) -> Path:
    path.write_bytes(issuer.public_pem())
    return path
