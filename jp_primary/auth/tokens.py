"""The service's own bearer tokens: HS256 JWTs signed with a key created on first start.

The key file lives under ``JP_HOME`` (or ``JP_TOKEN_KEY_PATH``); every process and host that shares
it accepts the same tokens. It is created with mode 0600 and never logged.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt

from jp_primary.auth.identity import Identity, Role

ISSUER = "jp-primary"
AUDIENCE = "jp-primary"
_ALGORITHM = "HS256"


def load_or_create_key(path: Path) -> bytes:
    """Read the signing key, creating it atomically (first writer wins) when missing."""
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_hex(32).encode())
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)  # fails if another process created it meanwhile
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes().strip()


class ServiceTokens:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def issue(self, subject: str, roles: Iterable[Role] = (), ttl: int = 86400) -> str:
        now = datetime.now(UTC)
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": subject,
            "iat": now,
            "nbf": now - timedelta(seconds=5),
            "exp": now + timedelta(seconds=ttl),
            "roles": sorted(str(r) for r in roles),
        }
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM)

    def verify(self, token: str) -> Identity:
        """Return the identity of a valid token; raise ``jwt.PyJWTError`` otherwise."""
        claims = jwt.decode(
            token,
            self._key,
            algorithms=[_ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "sub", "iss", "aud"]},
        )
        roles = frozenset(Role(r) for r in claims.get("roles", []) if r in Role._value2member_map_)
        return Identity(subject=str(claims["sub"]), roles=roles, method="token", issuer=ISSUER)
