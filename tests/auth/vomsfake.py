"""VOMS proxies made by the real ``voms-proxy-fake`` (Debian ``voms-clients``, installed by
``scripts/ensure-voms-clients.sh``), with a throwaway PKI: a CA, Alice (RSA: the tool signs with
RSA keys only, and needs a subject key identifier to name the proxy's authority key), a VOMS
server certificate, and a rogue CA with the same DN as the real one issuing a VOMS server
certificate with the real one's DN (the forger)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from .certs import Credential, _builder, _name, grid_name, make_host

VO = "testvo"
VOMS_HOST = "voms.example.org"
VOMS_NAME = grid_name(f"host/{VOMS_HOST}", org="JP VOMS")
ALICE_NAME = grid_name("Alice Smith", "12345")


def voms_proxy_fake() -> str:
    """The tool's path. Missing: a failure when JP_REQUIRE_GRID_TOOLS=1 (CI), else a skip."""
    found = shutil.which("voms-proxy-fake")
    if found:
        return found
    message = "voms-proxy-fake is missing: run scripts/ensure-voms-clients.sh"
    if os.environ.get("JP_REQUIRE_GRID_TOOLS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _rsa_ca(cn: str) -> Credential:
    """An RSA CA: voms-proxy-fake signs a proxy with the digest of the user certificate's
    signature algorithm, and falls back to SHA-1 for anything but RSA."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = _name((NameOID.DOMAIN_COMPONENT, "org"), (NameOID.ORGANIZATION_NAME, cn))
    cert = (
        _builder(name, name, key, 30, None)  # type: ignore[arg-type]
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return Credential(cert, key)  # type: ignore[arg-type]


def _rsa_cert(ca: Credential, name: x509.Name) -> Credential:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        _builder(name, ca.cert.subject, key, 10, None)  # type: ignore[arg-type]
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False), True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), False
        )
        .sign(ca.key, hashes.SHA256())
    )
    return Credential(cert, key)  # type: ignore[arg-type]


def _write_rsa(cred: Credential, folder: Path, stem: str) -> tuple[Path, Path]:
    cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}.key"
    cert_path.write_bytes(cred.cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        cred.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


@dataclass
class VomsPKI:
    folder: Path
    ca: Credential
    host: Credential

    @property
    def ca_dir(self) -> Path:
        return self.folder / "certificates"

    @property
    def vomsdir(self) -> Path:
        return self.folder / "vomsdir"

    def files(self, stem: str) -> tuple[Path, Path]:
        return self.folder / f"{stem}.pem", self.folder / f"{stem}.key"

    def proxy(
        self, out: str, *, signer: str = "voms", fqans: Sequence[str], extra: Sequence[str] = ()
    ) -> Path:
        """``voms-proxy-fake`` for Alice with an AC signed by ``signer`` (voms or rogue)."""
        cert, key = self.files("alice")
        host_cert, host_key = self.files(signer)
        path = self.folder / f"{out}.pem"
        command = [
            voms_proxy_fake(),
            "-q",
            "-rfc",
            "-bits",
            "2048",
            "-cert",
            str(cert),
            "-key",
            str(key),
            "-certdir",
            str(self.ca_dir),
            "-hostcert",
            str(host_cert),
            "-hostkey",
            str(host_key),
            "-voms",
            VO,
            "-uri",
            f"{VOMS_HOST}:15000",
            "-out",
            str(path),
            *[arg for fqan in fqans for arg in ("-fqan", fqan)],
            *extra,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert path.exists()
        return path

    def chain(self, proxy: Path) -> list[bytes]:
        """The proxy file's certificates as PEM items, leaf first, plus the CA (as TLS gives)."""
        certs = x509.load_pem_x509_certificates(proxy.read_bytes())
        pems = [c.public_bytes(serialization.Encoding.PEM) for c in certs]
        return [*pems, self.ca.cert_pem]


def make_voms_pki(folder: Path) -> VomsPKI:
    folder.mkdir(parents=True, exist_ok=True)
    ca = _rsa_ca("JP VOMS Test CA")
    rogue_ca = _rsa_ca("JP VOMS Test CA")  # same DN, another key: nobody trusts it
    pki = VomsPKI(folder, ca, make_host(ca))
    _write_rsa(_rsa_cert(ca, ALICE_NAME), folder, "alice")
    _write_rsa(_rsa_cert(ca, VOMS_NAME), folder, "voms")
    _write_rsa(_rsa_cert(rogue_ca, VOMS_NAME), folder, "rogue")
    pki.host.write(folder, "host")
    pki.ca_dir.mkdir()
    (pki.ca_dir / "jpvomsca.0").write_bytes(ca.cert_pem)
    (folder / "ca.pem").write_bytes(ca.cert_pem)
    return pki


def write_lsc(vomsdir: Path, ca: Credential) -> Path:
    """``<vomsdir>/testvo/voms.example.org.lsc``: the server's DN and its CA's DN."""
    from jp_primary.auth import dn

    folder = vomsdir / VO
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{VOMS_HOST}.lsc"
    subject = dn.to_slash(dn.from_name(VOMS_NAME))
    issuer = dn.to_slash(dn.from_name(ca.cert.subject))
    path.write_text(f"{subject}\n{issuer}\n")
    return path
