"""External token issuers (WLCG / SciTokens profiles), with public keys read from files.

Each issuer is configured in a TOML file (``JP_ISSUERS_FILE``, format in docs/auth.md) with its
``iss`` URL, accepted audiences and a JWKS or PEM key file; nothing is fetched from the network,
so key rotation means updating the file and restarting. A token's subject is recorded as
``<iss>#<sub>``: ``sub`` is unique only within one issuer. Issuer URLs with ``#`` are refused
(OpenID issuers have no fragment), so the first ``#`` separates the two and no two (iss, sub)
pairs collide.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from jp_primary.auth.identity import Identity, Role
from jp_primary.errors import ConfigurationError, Unauthenticated

DEFAULT_ALGORITHMS = ("RS256", "ES256")
_ALLOWED_ALGORITHMS = {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256"}


def external_subject(issuer: str, sub: str) -> str:
    return f"{issuer}#{sub}"


@dataclass(frozen=True)
class IssuerKey:
    key: Any  # a cryptography public key
    kid: str | None = None


def _keys_from_jwks(path: Path) -> list[IssuerKey]:
    try:
        jwks = jwt.PyJWKSet.from_json(path.read_text())
    except (OSError, ValueError, jwt.PyJWTError) as exc:
        raise ConfigurationError(f"cannot read JWKS file {path}: {exc}") from None
    return [IssuerKey(k.key, k.key_id) for k in jwks.keys]


def _keys_from_pem(path: Path) -> list[IssuerKey]:
    try:
        text = path.read_text()
        blocks = [b for b in text.split("-----END PUBLIC KEY-----") if "BEGIN PUBLIC KEY" in b]
        keys = [
            serialization.load_pem_public_key(f"{b}-----END PUBLIC KEY-----".encode())
            for b in blocks
        ]
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read public key file {path}: {exc}") from None
    if not keys:
        raise ConfigurationError(f"no PUBLIC KEY block in {path}")
    return [IssuerKey(k) for k in keys]


@dataclass(frozen=True)
class TokenIssuer:
    issuer: str
    audiences: tuple[str, ...]
    keys: tuple[IssuerKey, ...]
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    leeway: int = 30
    scope_roles: Mapping[str, Role] = field(default_factory=dict)

    def _candidate_keys(self, token: str) -> list[IssuerKey]:
        header = jwt.get_unverified_header(token)
        kid, alg = header.get("kid"), str(header.get("alg", ""))
        if alg not in self.algorithms:
            raise jwt.InvalidAlgorithmError("the token algorithm is not accepted for this issuer")
        key_type = ec.EllipticCurvePublicKey if alg.startswith("ES") else rsa.RSAPublicKey
        return [
            k
            for k in self.keys
            if isinstance(k.key, key_type) and (kid is None or k.kid in (kid, None))
        ]

    def _claims(self, token: str) -> dict[str, Any]:
        error: jwt.PyJWTError = jwt.InvalidSignatureError("no key of this issuer matches the token")
        for candidate in self._candidate_keys(token):
            try:
                return jwt.decode(
                    token,
                    candidate.key,
                    algorithms=list(self.algorithms),
                    audience=list(self.audiences),
                    issuer=self.issuer,
                    leeway=self.leeway,
                    options={"require": ["exp", "iss", "sub", "aud"]},
                )
            except jwt.InvalidSignatureError as exc:
                error = exc  # try the next key; any other error is final
        raise error

    def verify(self, token: str) -> Identity:
        """The identity of a valid token of this issuer; raise ``jwt.PyJWTError`` otherwise."""
        claims = self._claims(token)
        groups = _string_list(claims.get("wlcg.groups")) + _string_list(claims.get("groups"))
        scopes = _scopes(claims)
        roles = frozenset(role for scope, role in self.scope_roles.items() if scope in scopes)
        return Identity(
            subject=external_subject(self.issuer, str(claims["sub"])),
            roles=roles,
            method="token",
            issuer=self.issuer,
            groups=frozenset(groups),
        )


def _string_list(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _scopes(claims: Mapping[str, Any]) -> set[str]:
    scope = claims.get("scope")
    found = set(scope.split()) if isinstance(scope, str) else set()
    return found | set(_string_list(claims.get("scp")))


class ExternalIssuers:
    def __init__(self, issuers: Sequence[TokenIssuer] = ()) -> None:
        self._by_url = {i.issuer: i for i in issuers}

    def __len__(self) -> int:
        return len(self._by_url)

    def find(self, iss: str | None) -> TokenIssuer | None:
        return self._by_url.get(iss) if iss else None

    def verify(self, token: str, iss: str | None) -> Identity:
        issuer = self.find(iss)
        if issuer is None:
            raise Unauthenticated("bearer token from an issuer this service does not accept")
        return issuer.verify(token)


def _issuer_from_table(table: Mapping[str, Any], base: Path) -> TokenIssuer:
    url = table.get("issuer")
    audience = table.get("audience")
    if not isinstance(url, str) or not url:
        raise ConfigurationError('every [[issuers]] entry needs issuer = "<iss URL>"')
    if "#" in url:
        raise ConfigurationError(f"issuer {url}: an issuer URL has no '#' fragment")
    audiences = tuple(_string_list(audience))
    if not audiences:
        raise ConfigurationError(f"issuer {url}: audience (string or list) is required")
    if ("jwks_file" in table) == ("pem_file" in table):
        raise ConfigurationError(f"issuer {url}: give exactly one of jwks_file and pem_file")
    if "jwks_file" in table:
        keys = _keys_from_jwks(base / table["jwks_file"])
    else:
        keys = _keys_from_pem(base / table["pem_file"])
    algorithms = tuple(_string_list(table.get("algorithms", list(DEFAULT_ALGORITHMS))))
    if not algorithms or not set(algorithms) <= _ALLOWED_ALGORITHMS:
        raise ConfigurationError(
            f"issuer {url}: algorithms must be among {sorted(_ALLOWED_ALGORITHMS)}"
        )
    try:
        scope_roles = {str(k): Role(v) for k, v in table.get("scope_roles", {}).items()}
    except ValueError:
        raise ConfigurationError(f"issuer {url}: scope_roles values must be roles") from None
    return TokenIssuer(
        issuer=url,
        audiences=audiences,
        keys=tuple(keys),
        algorithms=algorithms,
        leeway=int(table.get("leeway", 30)),
        scope_roles=scope_roles,
    )


def load_issuers(path: Path | None) -> ExternalIssuers:
    """Read the issuers file; key file paths are relative to its folder. None → no issuers."""
    if path is None:
        return ExternalIssuers()
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read issuers file {path}: {exc}") from None
    tables = data.get("issuers", [])
    if not isinstance(tables, list):
        raise ConfigurationError(f"{path}: use [[issuers]] tables")
    return ExternalIssuers([_issuer_from_table(t, path.parent) for t in tables])


def unverified_issuer(token: str) -> str | None:
    """The ``iss`` claim before verification, only to pick which keys verify the token."""
    try:
        iss = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except (jwt.PyJWTError, json.JSONDecodeError):
        return None
    return iss if isinstance(iss, str) else None
