"""uvicorn glue: accept RFC 3820 proxies and hand the verified client chain to the application.

uvicorn puts no TLS information in the ASGI scope. ``TLSExtensionMixin`` (part of the one set of
protocol classes every listener uses, ``jp_primary.protocol``) reads the verified
chain once per connection (``connection_made`` runs after the handshake) and add the ASGI ``tls``
extension to the scope of every request on that connection. They rely on uvicorn internals
(``self.app`` is what each request cycle calls), hence the narrow uvicorn pin in pyproject and the
real-TLS tests in ``tests/auth``. Python 3.11 exposes the verified chain only through the private
``SSLObject._sslobj.get_verified_chain()``; 3.13 made it public and is preferred when present.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography import x509

from jp_primary.errors import ConfigurationError

_TLS_VERSIONS = {"TLSv1": 0x301, "TLSv1.1": 0x302, "TLSv1.2": 0x303, "TLSv1.3": 0x304}
_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----")
ClientCertMode = Literal["required", "optional"]


def verified_chain_pems(ssl_object: ssl.SSLObject) -> list[str]:
    """PEM certificates of the verified peer chain, leaf first (CA included); [] without one."""
    getter = getattr(ssl_object, "get_verified_chain", None)
    if getter is None:  # Python < 3.13
        getter = ssl_object._sslobj.get_verified_chain  # type: ignore[attr-defined]
    chain = getter() or []
    return [cert.public_bytes() for cert in chain]  # PEM is the default encoding


def _leaf_name(chain: list[str]) -> str | None:
    if not chain:
        return None
    try:
        return x509.load_pem_x509_certificate(chain[0].encode("ascii")).subject.rfc4514_string()
    except ValueError:
        return None


def tls_extension(ssl_object: ssl.SSLObject) -> dict[str, Any]:
    """The ASGI ``tls`` scope extension for one connection."""
    chain = verified_chain_pems(ssl_object)
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": _leaf_name(chain),
        "client_cert_error": None,  # a chain that fails verification never gets here
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
    }


ASGIApp = Callable[[dict[str, Any], Any, Any], Any]


def _with_tls(inner: ASGIApp, ext: dict[str, Any]) -> ASGIApp:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope.setdefault("extensions", {})["tls"] = ext
        await inner(scope, receive, send)

    return app


class TLSExtensionMixin:
    app: Any

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.app = _with_tls(self.app, tls_extension(ssl_object))


def crl_files(ca_file: Path | None, ca_dir: Path | None) -> list[Path]:
    """Files holding PEM CRLs: the CA file itself, and the ``*.r0``-style files of a CA dir."""
    candidates = [ca_file] if ca_file else []
    if ca_dir:
        candidates += sorted(p for p in ca_dir.iterdir() if p.is_file())
    return [p for p in candidates if b"-----BEGIN X509 CRL-----" in p.read_bytes()]


def ca_dir_pems(ca_dir: Path) -> str:
    """Every PEM certificate found in the files of ``ca_dir`` (hashed names or not)."""
    blocks: dict[str, None] = {}
    for path in sorted(ca_dir.iterdir()):
        if path.is_file():
            text = path.read_bytes().decode("ascii", "replace")
            blocks.update(dict.fromkeys(_PEM_CERT.findall(text)))
    if not blocks:
        raise ConfigurationError(f"no PEM certificate found in CA directory {ca_dir}")
    return "\n".join(blocks)


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


@dataclass(frozen=True)
class ClientCertContextFactory:
    """The server context of a TLS listener: its certificate and key, client certificates
    verified against the given CAs (and their CRLs, when the CA file or directory holds any),
    RFC 3820 proxies allowed. A module-level dataclass so that it pickles for ``workers > 1``
    (each worker builds its own context)."""

    client_cert: ClientCertMode = "required"
    ca_file: str | None = None
    ca_dir: str | None = None
    certfile: str | None = None
    keyfile: str | None = None

    def build(self) -> ssl.SSLContext:
        if self.certfile is None:
            raise ConfigurationError("a TLS listener needs its certificate (--tls-cert)")
        # OpenSSL's defaults, security level included: RSA/DSA/DH keys under 2,048 bits refused.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.certfile, self.keyfile)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.ca_file:
            ctx.load_verify_locations(cafile=self.ca_file)
        if self.ca_dir:
            ctx.load_verify_locations(cadata=ca_dir_pems(Path(self.ca_dir)))
        crls = crl_files(_path(self.ca_file), _path(self.ca_dir))
        for crl in crls:
            ctx.load_verify_locations(cafile=crl)
        if crls:
            # Grid convention (fetch-crl): with CRLs present, every CA in the chain needs a
            # current one. OpenSSL checks no CRL for proxy certificates, only for CA-issued ones.
            ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN
        ctx.verify_mode = ssl.CERT_REQUIRED if self.client_cert == "required" else ssl.CERT_OPTIONAL
        ctx.verify_flags |= ssl.VERIFY_ALLOW_PROXY_CERTS
        return ctx


def handshake_failure(exc: BaseException) -> str:
    """Why a TLS handshake failed, for the log: OpenSSL's reason, never certificate or key data."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"client certificate refused: {exc.verify_message} (X509 error {exc.verify_code})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc.strerror or type(exc).__name__}"
    if isinstance(exc, TimeoutError):
        return "no complete handshake within the header timeout"
    return f"connection lost during the handshake ({type(exc).__name__})"
