"""The end-entity identity behind a verified TLS client chain, RFC 3820 proxies included.

The TLS layer (``ssl`` with ``VERIFY_ALLOW_PROXY_CERTS``) has already verified the chain up to a
trusted CA. Here we find *whose* credential it is: starting at the leaf, every proxy certificate
(extension 1.3.6.1.5.5.7.1.14) must be signed by the next certificate, and its subject must be
that issuer's subject plus exactly one ``CN`` RDN. The first certificate without the extension is
the end-entity certificate (EEC) and its subject DN is the identity. The DN is never derived by
stripping trailing ``CN=`` parts: real grid DNs end in ``CN=`` too (``.../CN=Alice/CN=12345``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID, ObjectIdentifier

from jp_primary.auth import dn
from jp_primary.auth.identity import Identity
from jp_primary.auth.voms import VomsTrust, verified_fqans
from jp_primary.errors import Unauthenticated

PROXY_CERT_INFO = ObjectIdentifier("1.3.6.1.5.5.7.1.14")
# Proxy policy languages that keep the issuer's rights (RFC 3820 inheritAll, Globus "limited").
# An "independent" proxy (1.3.6.1.5.5.7.21.2) carries no rights of its issuer, so it is refused.
_INHERITING_POLICIES = {
    "1.3.6.1.5.5.7.21.1": "inheritAll",
    "1.3.6.1.4.1.3536.1.1.1.9": "limited",
}


def load_chain(pems: Sequence[str | bytes]) -> list[x509.Certificate]:
    """Parse PEM certificates (each item may hold one or more), keeping their order."""
    certs: list[x509.Certificate] = []
    for pem in pems:
        data = pem.encode("ascii") if isinstance(pem, str) else pem
        certs.extend(x509.load_pem_x509_certificates(data))
    return certs


def is_proxy(cert: x509.Certificate) -> bool:
    return any(ext.oid == PROXY_CERT_INFO for ext in cert.extensions)


def proxy_policy(cert: x509.Certificate) -> str:
    """The dotted OID of the proxy's policy language (from the DER of ProxyCertInfo)."""
    ext = cert.extensions.get_extension_for_oid(PROXY_CERT_INFO)
    der = ext.value.public_bytes()
    # ProxyCertInfo ::= SEQUENCE { pathLen INTEGER OPTIONAL, SEQUENCE { language OID, ... } }
    body = _der_contents(der, 0x30)
    if body[:1] == b"\x02":  # skip the optional path length
        body = body[2 + body[1] :]
    policy = _der_contents(body, 0x30)
    return _decode_oid(_der_contents(policy, 0x06))


def _der_contents(der: bytes, tag: int) -> bytes:
    """Contents of the first TLV in ``der`` (short or long length form), which must be ``tag``."""
    if len(der) < 2 or der[0] != tag:
        raise Unauthenticated("malformed proxy certificate information")
    length, start = der[1], 2
    if length & 0x80:
        size = length & 0x7F
        length, start = int.from_bytes(der[2 : 2 + size], "big"), 2 + size
    if start + length > len(der):
        raise Unauthenticated("malformed proxy certificate information")
    return der[start : start + length]


def _decode_oid(body: bytes) -> str:
    if not body:
        raise Unauthenticated("malformed proxy certificate information")
    arcs = [body[0] // 40 if body[0] < 80 else 2, body[0] - 40 * min(body[0] // 40, 2)]
    value = 0
    for byte in body[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    return ".".join(str(a) for a in arcs)


def _check_proxy_link(proxy: x509.Certificate, issuer: x509.Certificate) -> None:
    rdns = proxy.subject.rdns
    last = rdns[-1] if rdns else None
    if (
        last is None
        or list(rdns[:-1]) != list(issuer.subject.rdns)
        or len(last) != 1
        or next(iter(last)).oid != NameOID.COMMON_NAME
    ):
        raise Unauthenticated("proxy certificate subject does not extend its issuer's subject")
    try:
        proxy.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        raise Unauthenticated("proxy certificate is not signed by its issuer") from None
    if proxy_policy(proxy) not in _INHERITING_POLICIES:
        raise Unauthenticated("proxy certificate policy does not inherit its issuer's identity")


def _check_validity(cert: x509.Certificate, now: datetime) -> None:
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise Unauthenticated("client certificate is expired or not yet valid")


def end_entity(chain: Sequence[x509.Certificate], now: datetime | None = None) -> x509.Certificate:
    """Walk from the leaf through proxies to the end-entity certificate, checking each link."""
    return proxy_path(chain, now)[1]


def proxy_path(
    chain: Sequence[x509.Certificate], now: datetime | None = None
) -> tuple[list[x509.Certificate], x509.Certificate]:
    """The proxies from the leaf (checked link by link) and the end-entity certificate."""
    if not chain:
        raise Unauthenticated("no client certificate")
    now = now or datetime.now(UTC)
    current, rest = chain[0], list(chain[1:])
    _check_validity(current, now)
    proxies = []
    while is_proxy(current):
        proxies.append(current)
        issuer = next((c for c in rest if c.subject == current.issuer), None)
        if issuer is None:
            raise Unauthenticated("the issuer of a proxy certificate is missing from the chain")
        _check_proxy_link(current, issuer)
        _check_validity(issuer, now)
        rest.remove(issuer)
        current = issuer
    if _is_ca(current):
        raise Unauthenticated("a CA certificate is not a client identity")
    return proxies, current


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def identity_from_chain(
    pems: Sequence[str | bytes], now: datetime | None = None, voms: VomsTrust | None = None
) -> Identity:
    """The identity of a verified client chain (PEM, leaf first): the EEC subject DN, with the
    FQANs of the valid VOMS attribute certificates its proxies carry (``auth.voms``)."""
    try:
        proxies, eec = proxy_path(load_chain(pems), now)
        name = dn.from_name(eec.subject)
    except (ValueError, dn.DNError) as exc:
        raise Unauthenticated(f"unusable client certificate: {exc}") from None
    return Identity(
        subject=dn.to_slash(name),
        method="x509",
        dn_rfc4514=dn.to_rfc4514(name),
        issuer=None,
        fqans=verified_fqans(proxies, eec, voms, now) if proxies else (),
    )
