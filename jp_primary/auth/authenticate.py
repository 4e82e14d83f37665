"""Turn the credentials of one request into an ``Identity`` (or None for anonymous).

Transport-agnostic: the API layer collects ``Credentials`` from the request (bearer token, peer
address, headers, the verified TLS client chain) and calls ``Authenticator.authenticate``.
Precedence: a bearer token if present, else the TLS client chain, else a trusted front end's DN
header. Credentials that are presented but invalid raise ``Unauthenticated`` (401) instead of
falling back to a weaker method; the detail says what is wrong, never echoes the credential.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt

from jp_primary.auth.frontend import TrustedFrontEnds
from jp_primary.auth.identity import Identity
from jp_primary.auth.issuers import ExternalIssuers, load_issuers, unverified_issuer
from jp_primary.auth.policy import RolePolicy, load_policy
from jp_primary.auth.tokens import ISSUER, ServiceTokens, load_or_create_key
from jp_primary.auth.voms import VomsTrust
from jp_primary.auth.x509 import identity_from_chain
from jp_primary.config import Settings
from jp_primary.errors import Unauthenticated
from jp_primary.text import SUBJECT_MAX, text_problem

# The web view (/ui/) keeps a pasted token in this cookie. It is read only for paths under UI_PATH
# (the cookie's own Path too), so a browser's cookie never authenticates a REST call that a
# foreign page could trigger; the UI's forms carry a CSRF token besides.
UI_PATH = "/ui/"
UI_TOKEN_COOKIE = "jp_ui_token"  # noqa: S105  # a cookie name, not a secret
# ASGI scope key of the identity resolved before the body is read (api/guard.py).
IDENTITY_KEY = "jp_identity"


def cookie_value(header: str, name: str) -> str | None:
    """One cookie of a ``Cookie`` header (RFC 6265 ``name=value; ...``), unquoted."""
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"') or None
    return None


@dataclass(frozen=True)
class Credentials:
    bearer: str | None = None
    peer_host: str | None = None  # the TCP peer, not a forwarded-for address
    headers: Mapping[str, str] = field(default_factory=dict)
    # PEM certificates (str or bytes), leaf first, as verified by TLS (scope extensions "tls").
    tls_chain: Sequence[str | bytes] | None = None


def credentials_from_scope(scope: Mapping[str, Any]) -> Credentials:
    """The credentials of one ASGI HTTP request (plain ASGI: no web framework needed).

    Under ``/ui/`` a token kept in the ``jp_ui_token`` cookie counts as a bearer token when the
    request has no ``Authorization`` header.

    ``scope["client"]`` must be the TCP peer: run uvicorn without proxy-header rewriting (or
    with ``forwarded_allow_ips`` not covering the trusted front ends), or a client could pose as
    a front end's address.
    """
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    scheme, _, token = headers.get("authorization", "").partition(" ")
    tls = scope.get("extensions", {}).get("tls") or {}
    client = scope.get("client")
    bearer = token.strip() if scheme.lower() == "bearer" else None
    if bearer is None and str(scope.get("path", "")).startswith(UI_PATH):
        # The web view's signed-in token: the same bearer token, so the same authentication.
        bearer = cookie_value(headers.get("cookie", ""), UI_TOKEN_COOKIE)
    return Credentials(
        bearer=bearer,
        peer_host=client[0] if client else None,
        headers=headers,
        tls_chain=list(tls.get("client_cert_chain") or []) or None,
    )


class Authenticator:
    def __init__(
        self,
        tokens: ServiceTokens,
        issuers: ExternalIssuers | None = None,
        frontends: TrustedFrontEnds | None = None,
        policy: RolePolicy | None = None,
        voms: VomsTrust | None = None,
    ) -> None:
        self._tokens = tokens
        self._voms = voms
        self._issuers = issuers or ExternalIssuers()
        self._frontends = frontends or TrustedFrontEnds(())
        self._policy = policy or RolePolicy()
        self._verified = VerifiedTokens()

    def authenticate(self, creds: Credentials) -> Identity | None:
        if creds.bearer is not None and (known := self._verified.get(creds.bearer)) is not None:
            return known
        identity = self._identify(creds)
        if identity is None:
            return None
        _ensure_storable(identity.subject)
        identity = self._policy.apply(identity)
        if creds.bearer is not None:
            self._verified.put(creds.bearer, identity)
        return identity

    def _identify(self, creds: Credentials) -> Identity | None:
        if creds.bearer is not None:
            return self._bearer(creds.bearer)
        if creds.tls_chain:
            return identity_from_chain(creds.tls_chain, voms=self._voms)
        return self._frontends.identity(creds.peer_host, creds.headers)

    def _bearer(self, token: str) -> Identity:
        iss = unverified_issuer(token)
        try:
            if iss == ISSUER or iss is None:
                return self._tokens.verify(token)
            return self._issuers.verify(token, iss)
        except jwt.PyJWTError as exc:
            # Say what is wrong with the token, never echo the token itself.
            raise Unauthenticated(f"invalid bearer token: {exc}") from None


def _ensure_storable(subject: str) -> None:
    """A subject the database cannot hold is refused here (401), before any request uses it:
    the credential, not the request, is at fault, and it would fail on every route."""
    problem = text_problem(subject, SUBJECT_MAX)
    if problem is not None:
        raise Unauthenticated(
            f"the credential's subject {problem}; present a credential whose subject is valid "
            f"text of at most {SUBJECT_MAX} characters"
        )


class VerifiedTokens:
    """Tokens already verified by this process, until they expire.

    Verifying a signature on every request of a client that reuses its token is most of the
    authentication cost. A token's claims cannot change, so its identity holds until ``exp``.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._entries: dict[str, tuple[Identity, float]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> Identity | None:
        entry = self._entries.get(token)
        if entry is None or entry[1] <= time.time():
            return None
        return entry[0]

    def put(self, token: str, identity: Identity) -> None:
        expires = jwt.decode(token, options={"verify_signature": False}).get("exp")
        if not isinstance(expires, int | float):
            return
        with self._lock:
            if len(self._entries) >= self._capacity:
                self._entries.clear()  # simple and bounded; refills from live clients
            self._entries[token] = (identity, float(expires))


def build_authenticator(settings: Settings) -> Authenticator:
    """Everything from the settings; raises ``ConfigurationError`` for unusable files/addresses."""
    auth = settings.auth
    return Authenticator(
        tokens=ServiceTokens(load_or_create_key(settings.token_key_path)),
        issuers=load_issuers(auth.issuers_file),
        frontends=TrustedFrontEnds(auth.trusted_frontends, auth.frontend_dn_header),
        policy=load_policy(auth.policy_file),
        voms=VomsTrust.from_settings(auth.voms_dir, auth.voms_ca_dir),
    )
