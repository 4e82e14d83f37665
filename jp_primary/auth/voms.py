"""VOMS attribute certificates (ACs) in RFC 3820 proxies: verified, their FQANs exposed.

A VOMS proxy carries, in extension 1.3.6.1.4.1.8005.100.100.5, a sequence of RFC 3281/5755
attribute certificates signed by a VOMS server. Each AC is decoded with pyasn1-modules (RFC 5755)
and believed only when all of this holds (docs/auth.md, "VOMS"):

- its signature verifies with the public key of a VOMS server certificate that is trusted
  through the vomsdir (``JP_VOMS_DIR``, default ``$X509_VOMS_DIR`` or
  ``/etc/grid-security/vomsdir``) either
  * by a ``<vomsdir>/<vo>/<host>.lsc`` file: its lines are the subject DN of the server
    certificate and then the issuer DNs up the chain; the server certificate (and any
    intermediates) travel inside the AC (extension 1.3.6.1.4.1.8005.100.100.10), must match
    those DNs link by link, be signed each by the next, and the last one by a CA certificate
    of ``JP_VOMS_CA_DIR`` (default ``$X509_CERT_DIR`` or ``/etc/grid-security/certificates``);
  * or by the server certificate itself, as a PEM file in ``<vomsdir>/<vo>/`` or ``<vomsdir>/``;
- the server certificate and the AC are within their validity times;
- the AC's holder is the proxy's owner: the holder's serial is the end-entity certificate's and
  its name that certificate's subject or issuer (what the VOMS library itself checks);
- the FQANs belong to the AC's VO (``/<vo>/...``).

An AC that fails any check is ignored (logged with the reason), never an error: FQANs only ever
add rights, so ignoring a bad AC leaves the caller with what the proxy alone proves (its owner).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pyasn1.codec.der import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ, useful
from pyasn1_modules import rfc5280, rfc5755

from jp_primary.auth import dn

log = logging.getLogger(__name__)

ACSEQ = x509.ObjectIdentifier("1.3.6.1.4.1.8005.100.100.5")
_CERTSEQ = "1.3.6.1.4.1.8005.100.100.10"
_FQAN_ATTRIBUTE = "1.3.6.1.4.1.8005.100.100.4"
_HASHES: dict[str, tuple[str, hashes.HashAlgorithm]] = {
    "1.2.840.113549.1.1.11": ("rsa", hashes.SHA256()),
    "1.2.840.113549.1.1.12": ("rsa", hashes.SHA384()),
    "1.2.840.113549.1.1.13": ("rsa", hashes.SHA512()),
    "1.2.840.10045.4.3.2": ("ec", hashes.SHA256()),
    "1.2.840.10045.4.3.3": ("ec", hashes.SHA384()),
    "1.2.840.10045.4.3.4": ("ec", hashes.SHA512()),
}
# Critical AC extensions that do not restrict where the AC may be used.
_UNDERSTOOD = {"2.5.29.35", "2.5.29.56", _CERTSEQ}
DEFAULT_VOMS_DIR = Path("/etc/grid-security/vomsdir")
DEFAULT_CA_DIR = Path("/etc/grid-security/certificates")


class ACError(ValueError):
    """Why one attribute certificate is not believed."""


# The proxy extension holds the ACs and the AC extension the server certificate (and its chain),
# each sequence wrapped in one more SEQUENCE, as the VOMS library writes them.
_ACSEQ = univ.SequenceOf(
    componentType=univ.SequenceOf(componentType=rfc5755.AttributeCertificate())
)
_CERTSEQ_SPEC = univ.SequenceOf(componentType=univ.SequenceOf(componentType=rfc5280.Certificate()))


def _pems(path: Path) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError):
        return []


@dataclass(frozen=True)
class VomsTrust:
    """Where VOMS servers are trusted from; read from the files on every use of a VO, so that
    updating the vomsdir needs no restart (ACs are rare enough: one read per proxy request)."""

    vomsdir: Path
    ca_dir: Path | None = None
    leeway: timedelta = timedelta(minutes=5)

    @classmethod
    def from_settings(cls, vomsdir: Path | None, ca_dir: Path | None) -> VomsTrust | None:
        """``JP_VOMS_DIR``/``JP_VOMS_CA_DIR`` or the grid conventions; None: no vomsdir."""
        env_dir = os.environ.get("X509_VOMS_DIR")
        vomsdir = vomsdir or (Path(env_dir) if env_dir else DEFAULT_VOMS_DIR)
        if not vomsdir.is_dir():
            return None
        env_ca = os.environ.get("X509_CERT_DIR")
        ca_dir = ca_dir or (Path(env_ca) if env_ca else DEFAULT_CA_DIR)
        return cls(vomsdir, ca_dir if ca_dir.is_dir() else None)

    def ca_certs(self) -> list[x509.Certificate]:
        if self.ca_dir is None:
            return []
        found: list[x509.Certificate] = []
        for path in sorted(self.ca_dir.iterdir()):
            if path.is_file() and not path.name.endswith((".r0", ".crl_url", ".signing_policy")):
                found.extend(_pems(path))
        return found

    def lsc(self, vo: str, host: str) -> list[str] | None:
        path = self.vomsdir / vo / f"{host}.lsc"
        try:
            lines = path.read_text().splitlines()
        except OSError:
            return None
        return [line.strip() for line in lines if line.strip() and not line.startswith("#")]

    def server_certs(self, vo: str) -> list[x509.Certificate]:
        found: list[x509.Certificate] = []
        for folder in (self.vomsdir / vo, self.vomsdir):
            if folder.is_dir():
                for path in sorted(folder.iterdir()):
                    if path.is_file() and path.suffix != ".lsc":
                        found.extend(_pems(path))
        return found


def _verify(key: object, signature: bytes, data: bytes, algorithm: str) -> None:
    kind, digest = _HASHES.get(algorithm, ("", hashes.SHA256()))
    try:
        if kind == "rsa" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), digest)
        elif kind == "ec" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(digest))
        else:
            raise ACError(f"unsupported AC signature algorithm {algorithm}")
    except InvalidSignature:
        raise ACError("the AC signature does not verify with the VOMS server key") from None


def _slash(name: x509.Name) -> str:
    return dn.to_slash(dn.from_name(name))


def _same_dn(text: str, name: x509.Name) -> bool:
    try:
        return dn.normalize(text) == _slash(name)
    except dn.DNError:
        return False


def _name_der(general_names: univ.SequenceOf) -> bytes:
    """DER of the one directoryName in ``general_names``."""
    if len(general_names) != 1 or general_names[0].getName() != "directoryName":
        raise ACError("expected exactly one directory name")
    return encoder.encode(general_names[0]["directoryName"]["rdnSequence"])


def _time(value: useful.GeneralizedTime) -> datetime:
    return value.asDateTime.astimezone(UTC)


@dataclass(frozen=True)
class _AC:
    vo: str
    host: str
    fqans: tuple[str, ...]
    issuer_der: bytes
    holder_der: bytes
    holder_serial: int
    not_before: datetime
    not_after: datetime
    certs: list[x509.Certificate]
    tbs: bytes
    signature: bytes
    algorithm: str
    critical: tuple[str, ...] = ()  # OIDs of critical extensions


def _parse(ac: rfc5755.AttributeCertificate) -> _AC:
    info = ac["acinfo"]
    holder = info["holder"]["baseCertificateID"]
    if not holder.isValue:
        raise ACError("the AC holder has no baseCertificateID")
    issuer = info["issuer"]
    if issuer.getName() != "v2Form":
        raise ACError("the AC issuer is not a v2Form")
    fqans: list[str] = []
    authority = ""
    for attribute in info["attributes"]:
        if str(attribute["type"]) != _FQAN_ATTRIBUTE:
            continue
        for value in attribute["values"]:
            syntax, _ = decoder.decode(value, asn1Spec=rfc5755.IetfAttrSyntax())
            if syntax["policyAuthority"].isValue:
                for name in syntax["policyAuthority"]:
                    if name.getName() == "uniformResourceIdentifier":
                        authority = str(name["uniformResourceIdentifier"])
            for item in syntax["values"]:
                kind = item.getName()
                raw = item[kind]
                fqans.append(bytes(raw).decode("utf-8") if kind == "octets" else str(raw))
    vo, _, rest = authority.partition("://")
    host = rest.split(":", 1)[0]
    if not vo or not host:
        raise ACError("the AC names no VO and VOMS host (policyAuthority vo://host:port)")
    certs: list[x509.Certificate] = []
    critical: list[str] = []
    if info["extensions"].isValue:
        for ext in info["extensions"]:
            if bool(ext["critical"]):
                critical.append(str(ext["extnID"]))
            if str(ext["extnID"]) == _CERTSEQ:
                seq, _ = decoder.decode(bytes(ext["extnValue"]), asn1Spec=_CERTSEQ_SPEC)
                certs = [
                    x509.load_der_x509_certificate(encoder.encode(c)) for cs in seq for c in cs
                ]
    validity = info["attrCertValidityPeriod"]
    return _AC(
        vo=vo,
        host=host,
        fqans=tuple(fqans),
        issuer_der=_name_der(issuer["v2Form"]["issuerName"]),
        holder_der=_name_der(holder["issuer"]),
        holder_serial=int(holder["serial"]),
        not_before=_time(validity["notBeforeTime"]),
        not_after=_time(validity["notAfterTime"]),
        certs=certs,
        tbs=encoder.encode(info),
        signature=ac["signatureValue"].asOctets(),
        algorithm=str(ac["signatureAlgorithm"]["algorithm"]),
        critical=tuple(critical),
    )


def _valid_at(cert: x509.Certificate, now: datetime, leeway: timedelta) -> bool:
    return cert.not_valid_before_utc - leeway <= now <= cert.not_valid_after_utc + leeway


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _lsc_signer(ac: _AC, lines: list[str], trust: VomsTrust, now: datetime) -> x509.Certificate:
    """The server certificate the .lsc file vouches for, its chain checked up to a CA."""
    if len(lines) < 2 or len(lines) % 2:
        raise ACError(f"{ac.vo}/{ac.host}.lsc must list subject and issuer DNs in pairs")
    chain = ac.certs[: len(lines) // 2]
    if len(chain) != len(lines) // 2:
        raise ACError("the AC lacks the VOMS server certificates its .lsc file lists")
    for i, cert in enumerate(chain):
        if not (_same_dn(lines[2 * i], cert.subject) and _same_dn(lines[2 * i + 1], cert.issuer)):
            raise ACError(f"the VOMS server certificates do not match {ac.vo}/{ac.host}.lsc")
        if not _valid_at(cert, now, trust.leeway):
            raise ACError("a VOMS server certificate is expired or not yet valid")
        if i + 1 < len(chain) and not _signed_by(cert, chain[i + 1]):
            raise ACError("the VOMS server certificate chain is broken")
    last = chain[-1]
    if not any(
        ca.subject == last.issuer and _valid_at(ca, now, trust.leeway) and _signed_by(last, ca)
        for ca in trust.ca_certs()
    ):
        raise ACError("the VOMS server certificate is not signed by a trusted CA")
    return chain[0]


def _check(ac: _AC, eec: x509.Certificate, trust: VomsTrust, now: datetime) -> tuple[str, ...]:
    unknown = set(ac.critical) - _UNDERSTOOD
    if unknown:  # e.g. AC targeting (2.5.29.55): this service cannot tell if it is a target
        raise ACError(f"the AC has critical extensions this service does not handle: {unknown}")
    if not ac.not_before - trust.leeway <= now <= ac.not_after + trust.leeway:
        raise ACError("the AC is expired or not yet valid")
    if ac.holder_serial != eec.serial_number or ac.holder_der not in (
        eec.subject.public_bytes(),
        eec.issuer.public_bytes(),
    ):
        raise ACError("the AC holder is not the proxy's owner")
    lines = trust.lsc(ac.vo, ac.host)
    if lines is not None:
        candidates = [_lsc_signer(ac, lines, trust, now)]
    else:
        candidates = [c for c in trust.server_certs(ac.vo) if _valid_at(c, now, trust.leeway)]
        if not candidates:
            raise ACError(f"no {ac.vo}/{ac.host}.lsc file nor server certificate in the vomsdir")
    error = ACError("the AC issuer is not the VOMS server certificate")
    for signer in candidates:
        if signer.subject.public_bytes() != ac.issuer_der:
            continue
        try:
            _verify(signer.public_key(), ac.signature, ac.tbs, ac.algorithm)
        except ACError as exc:
            error = exc
            continue
        bad = [f for f in ac.fqans if not (f == f"/{ac.vo}" or f.startswith(f"/{ac.vo}/"))]
        if bad:
            raise ACError(f"FQANs outside the AC's VO {ac.vo!r}")
        return ac.fqans
    raise error


def acs_of(cert: x509.Certificate) -> list[rfc5755.AttributeCertificate]:
    """The ACs a proxy certificate carries (none without the VOMS extension)."""
    try:
        ext = cert.extensions.get_extension_for_oid(ACSEQ)
    except x509.ExtensionNotFound:
        return []
    value = ext.value
    der = value.value if isinstance(value, x509.UnrecognizedExtension) else b""
    seq, _ = decoder.decode(der, asn1Spec=_ACSEQ)
    return [ac for acs in seq for ac in acs]


def verified_fqans(
    proxies: Sequence[x509.Certificate],
    eec: x509.Certificate,
    trust: VomsTrust | None,
    now: datetime | None = None,
) -> tuple[str, ...]:
    """FQANs of every valid AC in the proxies (leaf first), in order, without repeats."""
    now = now or datetime.now(UTC)
    found: dict[str, None] = {}
    for proxy in proxies:
        try:
            acs = acs_of(proxy)
        except (PyAsn1Error, ValueError) as exc:
            log.warning("ignoring malformed VOMS extension of %s: %s", _slash(eec.subject), exc)
            continue
        for ac in acs:
            if trust is None:
                log.info("ignoring a VOMS AC of %s: no vomsdir configured", _slash(eec.subject))
                continue
            try:
                found.update(dict.fromkeys(_check(_parse(ac), eec, trust, now)))
            except (ACError, PyAsn1Error, ValueError, OSError) as exc:
                log.warning("ignoring a VOMS AC of %s: %s", _slash(eec.subject), exc)
    return tuple(found)


def fqan_key(fqan: str) -> str:
    """``/vo/g/Role=NULL/Capability=NULL`` and ``/vo/g`` are the same FQAN (VOMS convention)."""
    parts = [p for p in fqan.split("/") if p and p not in ("Role=NULL", "Capability=NULL")]
    return "/" + "/".join(parts)
