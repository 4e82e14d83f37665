"""Who the client says it is: a bearer token, or an X.509 certificate / RFC 3820 proxy over TLS.

The lookup follows what grid tools do: an explicit token or certificate first; then ``JP_TOKEN``
(or ``JP_TOKEN_FILE``); then the proxy named by ``X509_USER_PROXY``, else ``x509up_u<uid>`` in
the temporary directory; then ``X509_USER_CERT``/``X509_USER_KEY``. Servers are verified against
``X509_CERT_DIR`` (a hashed CA directory, as ``/etc/grid-security/certificates``) when set, else
against the system's CA store.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from jp_primary.client.errors import CredentialsError


def default_proxy_path(env: Mapping[str, str] | None = None) -> Path:
    """Where grid tools keep the user's proxy: ``X509_USER_PROXY``, else
    ``<tmp>/x509up_u<uid>``."""
    env = os.environ if env is None else env
    named = env.get("X509_USER_PROXY")
    if named:
        return Path(named)
    return Path(tempfile.gettempdir()) / f"x509up_u{os.getuid()}"


@dataclass(frozen=True)
class Credentials:
    """A token, or a certificate chain file and its key (the same file for a proxy), plus where
    the CAs that sign the server's certificate are."""

    token: str | None = None
    cert: Path | None = None
    key: Path | None = None
    ca_dir: Path | None = None
    ca_file: Path | None = None

    @property
    def kind(self) -> str:
        if self.token:
            return "token"
        if self.cert:
            return "x509"
        return "none"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context: the CAs to trust and, for X.509, the chain to present."""
        if self.ca_dir or self.ca_file:
            ctx = ssl.create_default_context(
                cafile=str(self.ca_file) if self.ca_file else None,
                capath=str(self.ca_dir) if self.ca_dir else None,
            )
        else:
            ctx = ssl.create_default_context()
        if self.cert is not None:
            try:
                # A proxy file holds certificate, key and chain: key=None reads the key from it.
                ctx.load_cert_chain(str(self.cert), str(self.key) if self.key else None)
            except (OSError, ssl.SSLError) as exc:
                raise CredentialsError(f"cannot load the certificate {self.cert}: {exc}") from exc
        return ctx

    @classmethod
    def lookup(
        cls,
        *,
        token: str | None = None,
        token_file: str | Path | None = None,
        cert: str | Path | None = None,
        key: str | Path | None = None,
        ca_dir: str | Path | None = None,
        ca_file: str | Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Credentials:
        """The credentials the arguments name, else the standard lookup (module docstring)."""
        env = os.environ if env is None else env
        ca_dir = ca_dir or env.get("X509_CERT_DIR") or None
        cas = cls(
            ca_dir=Path(ca_dir) if ca_dir else None, ca_file=Path(ca_file) if ca_file else None
        )
        if token:
            return replace(cas, token=token.strip())
        if token_file:
            return replace(cas, token=_read_token(Path(token_file)))
        if cert:
            return replace(cas, cert=Path(cert), key=Path(key) if key else None)
        if env.get("JP_TOKEN"):
            return replace(cas, token=env["JP_TOKEN"].strip())
        if env.get("JP_TOKEN_FILE"):
            return replace(cas, token=_read_token(Path(env["JP_TOKEN_FILE"])))
        proxy = default_proxy_path(env)
        if proxy.is_file():
            return replace(cas, cert=proxy)
        if env.get("X509_USER_PROXY"):
            raise CredentialsError(f"X509_USER_PROXY names {proxy}, which does not exist")
        if env.get("X509_USER_CERT"):
            user_key = env.get("X509_USER_KEY")
            key_path = Path(user_key) if user_key else None
            return replace(cas, cert=Path(env["X509_USER_CERT"]), key=key_path)
        return cas


def _read_token(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise CredentialsError(f"cannot read the token file {path}: {exc}") from exc
