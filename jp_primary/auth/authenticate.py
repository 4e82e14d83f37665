"""Turn the credentials of one request into an ``Identity`` (or None for anonymous).

Transport-agnostic: the API layer collects ``Credentials`` from the request (bearer token, peer
address, headers, the verified TLS client chain) and calls ``Authenticator.authenticate``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import jwt

from jp_primary.auth.identity import Identity
from jp_primary.auth.tokens import ServiceTokens
from jp_primary.errors import Unauthenticated


@dataclass(frozen=True)
class Credentials:
    bearer: str | None = None
    peer_host: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    tls_chain: Sequence[bytes] | None = None  # PEM certificates, leaf first, as verified by TLS


class Authenticator:
    def __init__(self, tokens: ServiceTokens) -> None:
        self._tokens = tokens

    def authenticate(self, creds: Credentials) -> Identity | None:
        if creds.bearer is not None:
            try:
                return self._tokens.verify(creds.bearer)
            except jwt.PyJWTError as exc:
                # Say what is wrong with the token, never echo the token itself.
                raise Unauthenticated(f"invalid bearer token: {exc}") from None
        return None
