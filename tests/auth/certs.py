"""A small grid PKI for tests, made with ``cryptography``: CAs, user and host certificates, and
RFC 3820 proxies (1 and 2 levels, and one signed by the wrong user). Reusable by any test suite.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

PROXY_CERT_INFO = ObjectIdentifier("1.3.6.1.5.5.7.1.14")
# ProxyCertInfo DER: SEQUENCE { SEQUENCE { policyLanguage OID } }.
PCI_INHERIT_ALL = bytes.fromhex("300c300a06082b06010505071501")
PCI_INDEPENDENT = bytes.fromhex("300c300a06082b06010505071502")
PCI_LIMITED_PATHLEN_1 = bytes.fromhex("3012020101300d060b2b060104019b5001010109")

Key = ec.EllipticCurvePrivateKey


def _name(*rdns: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.RelativeDistinguishedName([x509.NameAttribute(o, v)]) for o, v in rdns])


def grid_name(*cns: str, org: str = "JP Test") -> x509.Name:
    """``/DC=org/DC=example/O=<org>/CN=<cn>/CN=<cn>...``: grid-style, ending in CN=<number>."""
    base = [(NameOID.DOMAIN_COMPONENT, "org"), (NameOID.DOMAIN_COMPONENT, "example")]
    return _name(*base, (NameOID.ORGANIZATION_NAME, org), *[(NameOID.COMMON_NAME, c) for c in cns])


@dataclass
class Credential:
    """A certificate, its key and the certificates a client sends with it (leaf first)."""

    cert: x509.Certificate
    key: Key
    chain: list[x509.Certificate] = field(default_factory=list)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def chain_pems(self) -> list[bytes]:
        """The presented chain as PEM items, leaf first."""
        return [c.public_bytes(serialization.Encoding.PEM) for c in [self.cert, *self.chain]]

    def write(self, folder: Path, stem: str) -> tuple[Path, Path]:
        """Write ``<stem>.pem`` (leaf and chain) and ``<stem>.key``; return both paths."""
        folder.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}.key"
        cert_path.write_bytes(b"".join(self.chain_pems))
        key_path.write_bytes(self.key_pem)
        key_path.chmod(0o600)
        return cert_path, key_path


def _new_key() -> Key:
    return ec.generate_private_key(ec.SECP256R1())


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    key: Key,
    days: int,
    not_before: datetime | None,
    serial: int | None = None,
) -> x509.CertificateBuilder:
    start = not_before or datetime.now(UTC) - timedelta(hours=1)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
    )


def make_ca(cn: str = "JP Test CA") -> Credential:
    key = _new_key()
    name = _name((NameOID.DOMAIN_COMPONENT, "org"), (NameOID.ORGANIZATION_NAME, cn))
    cert = (
        _builder(name, name, key, 30, None)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return Credential(cert, key)


def issue(
    ca: Credential,
    subject: x509.Name,
    *,
    days: int = 10,
    not_before: datetime | None = None,
    host: str | None = None,
) -> Credential:
    """An end-entity certificate signed by ``ca``: a user, or a host when ``host`` is given."""
    key = _new_key()
    usage = [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
    builder = (
        _builder(subject, ca.cert.subject, key, days, not_before)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False), True
        )
        .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    )
    if host is not None:
        names = [x509.DNSName(host), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return Credential(builder.sign(ca.key, hashes.SHA256()), key)


def make_host(ca: Credential, host: str = "localhost") -> Credential:
    name = _name((NameOID.DOMAIN_COMPONENT, "org"), (NameOID.COMMON_NAME, f"host/{host}"))
    return issue(ca, name, host=host)


def make_proxy(
    issuer: Credential,
    *,
    signer: Credential | None = None,
    pci: bytes = PCI_INHERIT_ALL,
    cn: str | None = None,
    subject: x509.Name | None = None,
) -> Credential:
    """An RFC 3820 proxy of ``issuer`` (subject = issuer + CN=<serial>), signed by ``signer``
    (default: the issuer itself; another user's credential makes a forged proxy). ``subject``
    overrides the RFC 3820 subject, to make malformed proxies."""
    signer = signer or issuer
    key = _new_key()
    serial = x509.random_serial_number()
    subject = subject or x509.Name(
        [
            *issuer.cert.subject.rdns,
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(NameOID.COMMON_NAME, cn or str(serial % 10**9))]
            ),
        ]
    )
    cert = (
        _builder(subject, issuer.cert.subject, key, 1, None, serial)
        .add_extension(x509.UnrecognizedExtension(PROXY_CERT_INFO, pci), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False), True
        )
        .sign(signer.key, hashes.SHA256())
    )
    return Credential(cert, key, [issuer.cert, *issuer.chain])


def make_crl(ca: Credential, revoked: list[Credential], hours_valid: int = 24) -> bytes:
    """A PEM CRL of ``ca`` revoking the given certificates."""
    now = datetime.now(UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now - timedelta(hours=1))
        .next_update(now + timedelta(hours=hours_valid))
    )
    for cred in revoked:
        entry = x509.RevokedCertificateBuilder().serial_number(cred.cert.serial_number)
        builder = builder.add_revoked_certificate(entry.revocation_date(now).build())
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


@dataclass
class GridPKI:
    """Everything the TLS and X.509 tests need, written under ``folder``."""

    folder: Path
    ca: Credential
    other_ca: Credential
    host: Credential
    alice: Credential
    bob: Credential
    alice_proxy: Credential
    alice_proxy2: Credential
    forged_proxy: Credential  # claims to be Alice's proxy, signed by Bob
    expired: Credential
    stranger: Credential  # from a CA the server does not trust

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.pem"

    def files(self, name: str) -> tuple[Path, Path]:
        return self.folder / f"{name}.pem", self.folder / f"{name}.key"


ALICE = ("Alice Smith", "12345")
BOB = ("Bob Jones", "67890")


def make_pki(folder: Path) -> GridPKI:
    ca, other_ca = make_ca(), make_ca("Unknown CA")
    alice = issue(ca, grid_name(*ALICE))
    bob = issue(ca, grid_name(*BOB))
    alice_proxy = make_proxy(alice)
    long_ago = datetime.now(UTC) - timedelta(days=30)
    pki = GridPKI(
        folder=folder,
        ca=ca,
        other_ca=other_ca,
        host=make_host(ca),
        alice=alice,
        bob=bob,
        alice_proxy=alice_proxy,
        alice_proxy2=make_proxy(alice_proxy),
        forged_proxy=make_proxy(alice, signer=bob),
        expired=issue(ca, grid_name("Old Timer", "11111"), days=2, not_before=long_ago),
        stranger=issue(other_ca, grid_name("Eve Unknown", "66666")),
    )
    folder.mkdir(parents=True, exist_ok=True)
    pki.ca_file.write_bytes(ca.cert_pem)
    for name in ("host", "alice", "bob", "alice_proxy", "alice_proxy2", "forged_proxy"):
        getattr(pki, name).write(folder, name)
    pki.expired.write(folder, "expired")
    pki.stranger.write(folder, "stranger")
    return pki
