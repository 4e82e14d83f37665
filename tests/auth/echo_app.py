"""A tiny ASGI app for the TLS tests: answers with the identity ``build_authenticator`` computes
from the request scope (settings come from ``JP_*`` variables of the server process)."""

from __future__ import annotations

import json
from typing import Any

from jp_primary.auth.authenticate import build_authenticator, credentials_from_scope
from jp_primary.config import load_settings
from jp_primary.errors import JPError

_authenticator = build_authenticator(load_settings())


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    tls = scope.get("extensions", {}).get("tls")
    try:
        identity = _authenticator.authenticate(credentials_from_scope(scope))
    except JPError as exc:
        status, body = exc.status_code, {"error": exc.error, "detail": exc.detail}
    else:
        status, body = (
            200,
            {
                "anonymous": identity is None,
                "subject": identity.subject if identity else None,
                "method": identity.method if identity else None,
                "roles": sorted(identity.roles) if identity else [],
                "dn_rfc4514": identity.dn_rfc4514 if identity else None,
                "tls_version": tls.get("tls_version") if tls else None,
                "chain_length": len(tls["client_cert_chain"]) if tls else None,
            },
        )
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
