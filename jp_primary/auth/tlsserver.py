"""Keyword arguments making ``uvicorn.run`` / ``uvicorn.Config`` a client-certificate listener."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from jp_primary.auth.tlsproto import ClientCertContextFactory
from jp_primary.errors import ConfigurationError
from jp_primary.protocol import H11_PROTOCOL, HTTPTOOLS_PROTOCOL, TLSListener, protocol_kwargs

__all__ = ["H11_PROTOCOL", "HTTPTOOLS_PROTOCOL", "tls_uvicorn_kwargs"]


def _readable_file(path: str | Path, what: str) -> str:
    if not Path(path).is_file():
        raise ConfigurationError(f"{what} {path} is not a readable file")
    return str(path)


def tls_uvicorn_kwargs(
    tls_cert: str | Path,
    tls_key: str | Path | None = None,
    ca_file: str | Path | None = None,
    ca_dir: str | Path | None = None,
    client_cert: Literal["required", "optional"] = "required",
    http: Literal["httptools", "h11"] | None = None,
) -> dict[str, Any]:
    """uvicorn settings for a TLS listener that verifies client certificates (proxies allowed).

    ``ca_file`` and/or ``ca_dir`` name the trusted CAs (a directory is read file by file, hashed
    names or not). The verified chain reaches the application as ``scope["extensions"]["tls"]``.
    """
    if ca_file is None and ca_dir is None:
        raise ConfigurationError("a TLS listener needs --ca-file or --ca-dir to verify clients")
    if client_cert not in ("required", "optional"):
        raise ConfigurationError("--client-cert must be 'required' or 'optional'")
    if ca_dir is not None and not Path(ca_dir).is_dir():
        raise ConfigurationError(f"CA directory {ca_dir} is not a directory")
    context = ClientCertContextFactory(
        client_cert=client_cert,
        ca_file=_readable_file(ca_file, "CA file") if ca_file else None,
        ca_dir=str(ca_dir) if ca_dir else None,
        certfile=_readable_file(tls_cert, "TLS certificate"),
        keyfile=_readable_file(tls_key, "TLS key") if tls_key else None,
    )
    context.build()  # unusable files or CAs: refuse to start here, not in every worker
    # Our protocol does the handshake (refusals are logged): uvicorn gets no ssl_* setting.
    return protocol_kwargs(http) | {
        "http": TLSListener(
            context, "h11" if protocol_kwargs(http)["http"] == H11_PROTOCOL else "httptools"
        ),
        # The client address must stay the TCP peer: trusted front ends are recognised by it.
        "proxy_headers": False,
    }
