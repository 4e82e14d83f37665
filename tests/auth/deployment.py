"""A small deployment of the real service for end-to-end authentication tests.

Three ``jp-primary serve`` processes share one database and one ``JP_HOME`` (so one signing
key): a TLS listener verifying client certificates (``--client-cert optional``), a plain-HTTP
listener that believes the DN header of a front end at 127.0.0.1, and a plain-HTTP listener
without trusted front ends. The policy file makes an L&B host certificate ``trusted``, one user
``admin`` and an index server's host certificate ``indexer``; the issuers file accepts one
external issuer whose public key is a JWKS file.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import LB_HOST

from .certs import Credential, GridPKI, grid_name, issue
from .issuerkeys import IssuerSigner, write_jwks
from .served import ServeProcess, run_cli

AUDIENCE = "https://jp.example.org"
ADMIN = "/DC=org/DC=example/O=JP Test/CN=Carol Admin/CN=24680"
INDEXER = "/DC=org/DC=example/O=JP Test/CN=host/jpis.example.org"

# Roles by DN; the admin entry is written in RFC 4514 form, which the policy normalises.
POLICY = f"""
[trusted]
dns = ["{LB_HOST}"]

[admin]
dns = ["CN=24680,CN=Carol Admin,O=JP Test,DC=example,DC=org"]

[indexer]
dn_globs = ["/DC=org/DC=example/O=JP Test/CN=host/jpis*"]
"""


@dataclass
class Wallet:
    """Client credential files by name (those of ``GridPKI`` plus the deployment's own)."""

    pki: GridPKI
    extra: dict[str, tuple[Path, Path]] = field(default_factory=dict)

    def files(self, name: str) -> tuple[Path, Path]:
        return self.extra.get(name) or self.pki.files(name)

    def context(self, name: str | None) -> ssl.SSLContext:
        """A client TLS context trusting the test CA, presenting ``name``'s chain (None: none)."""
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_file))
        if name is not None:
            cert, key = self.files(name)
            ctx.load_cert_chain(cert, key)
        return ctx

    def private_keys(self) -> list[bytes]:
        names = ["host", "alice", "bob", "alice_proxy", "alice_proxy2", "forged_proxy"]
        paths = [self.files(n)[1] for n in [*names, *self.extra]]
        return [p.read_bytes() for p in paths]


def make_wallet(pki: GridPKI, folder: Path) -> Wallet:
    extra: dict[str, Credential] = {
        "lb_host": issue(pki.ca, grid_name("host/lb.example.org"), host="lb.example.org"),
        "admin": issue(pki.ca, grid_name("Carol Admin", "24680")),
        "indexer": issue(pki.ca, grid_name("host/jpis.example.org"), host="jpis.example.org"),
    }
    return Wallet(pki, {name: cred.write(folder, name) for name, cred in extra.items()})


@dataclass
class Deployment:
    home: Path
    settings: dict[str, str]
    wallet: Wallet
    tls: ServeProcess
    frontend: ServeProcess  # JP_TRUSTED_FRONTENDS=127.0.0.1
    plain: ServeProcess  # no trusted front ends
    # Every bearer token a test sent, checked against the server logs at the end.
    tokens_sent: list[str] = field(default_factory=list)

    @property
    def servers(self) -> list[ServeProcess]:
        return [self.tls, self.frontend, self.plain]

    def service_token(self, subject: str, *roles: str) -> str:
        """A token printed by ``jp-primary token`` for this deployment's ``JP_HOME``."""
        args = ["token", "--subject", subject]
        for role in roles:
            args += ["--role", role]
        done = run_cli(self.settings, *args)
        assert done.returncode == 0, done.stderr
        token = done.stdout.strip()
        self.tokens_sent.append(token)
        return token


def write_config(folder: Path, issuer: IssuerSigner) -> tuple[Path, Path]:
    """The policy file and an issuers file accepting ``issuer`` for ``AUDIENCE``."""
    policy = folder / "policy.toml"
    policy.write_text(POLICY)
    write_jwks(folder / "issuer.jwks", issuer)
    issuers = folder / "issuers.toml"
    issuers.write_text(
        f'[[issuers]]\nissuer = "{issuer.url}"\naudience = "{AUDIENCE}"\n'
        'jwks_file = "issuer.jwks"\n'
    )
    return policy, issuers


def start_deployment(
    folder: Path, database_url: str, pki: GridPKI, issuer: IssuerSigner
) -> Deployment:
    """Migrate with ``jp-primary migrate``, then start the three servers side by side."""
    folder.mkdir(parents=True, exist_ok=True)
    policy, issuers = write_config(folder, issuer)
    home = folder / "home"
    settings = {
        "JP_HOME": str(home),
        "JP_DATABASE_URL": database_url,
        "JP_POLICY_FILE": str(policy),
        "JP_ISSUERS_FILE": str(issuers),
    }
    migrated = run_cli(settings, "migrate")
    if migrated.returncode != 0:
        raise RuntimeError(f"jp-primary migrate failed: {migrated.stderr}")
    wallet = make_wallet(pki, folder / "wallet")
    cert, key = pki.files("host")
    tls_args = ["--tls-cert", str(cert), "--tls-key", str(key), "--ca-file", str(pki.ca_file)]
    tls_args += ["--client-cert", "optional"]
    deployment = Deployment(
        home=home,
        settings=settings,
        wallet=wallet,
        tls=ServeProcess(settings, folder / "tls.log", tls_args, verify=wallet.context(None)),
        frontend=ServeProcess(
            settings | {"JP_TRUSTED_FRONTENDS": "127.0.0.1"}, folder / "frontend.log"
        ),
        plain=ServeProcess(settings, folder / "plain.log"),
    )
    try:
        for server in deployment.servers:
            server.launch()
        for server in deployment.servers:
            server.wait_ready()
    except BaseException:
        stop_deployment(deployment)
        raise
    return deployment


def stop_deployment(deployment: Deployment) -> None:
    for server in deployment.servers:
        server.stop()
