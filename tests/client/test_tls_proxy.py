"""The client over real TLS with an RFC 3820 proxy found the standard way (X509_USER_PROXY, then
x509up_u<uid> in the temporary directory) and the server verified against X509_CERT_DIR."""

from __future__ import annotations

import os
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from jp_primary.client import Client, ConnectionFailed, Credentials, Unauthenticated
from tests.auth.certs import Credential, GridPKI, make_pki
from tests.auth.served import CLI, ServeProcess, run_cli

from .support import new_jobid

pytestmark = pytest.mark.slow
ALICE = "/DC=org/DC=example/O=JP Test/CN=Alice Smith/CN=12345"


def write_proxy_file(cred: Credential, path: Path) -> Path:
    """The grid proxy file layout: certificate, key, then the chain (as voms-proxy-init)."""
    chain = b"".join(cred.chain_pems[1:])
    path.write_bytes(cred.cert_pem + cred.key_pem + chain)
    path.chmod(0o600)
    return path


def hashed_ca_dir(pki: GridPKI, folder: Path) -> Path:
    """An X509_CERT_DIR: the CA under its OpenSSL subject hash, as /etc/grid-security does."""
    folder.mkdir()
    digest = subprocess.run(
        ["openssl", "x509", "-noout", "-subject_hash", "-in", str(pki.ca_file)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (folder / f"{digest}.0").write_bytes(pki.ca.cert_pem)
    return folder


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeProcess, GridPKI, Path]]:
    folder = tmp_path_factory.mktemp("tls")
    pki = make_pki(folder / "pki")
    settings = {
        "JP_HOME": str(folder / "home"),
        "JP_DATABASE_URL": f"sqlite:///{folder / 'jp.sqlite'}",
    }
    assert run_cli(settings, "migrate").returncode == 0
    cert, key = pki.files("host")
    args = ["--tls-cert", str(cert), "--tls-key", str(key), "--ca-file", str(pki.ca_file)]
    verify = ssl.create_default_context(cafile=str(pki.ca_file))
    server = ServeProcess(
        settings, folder / "serve.log", [*args, "--client-cert", "optional"], verify
    )
    server.launch()
    try:
        server.wait_ready()
        yield server, pki, hashed_ca_dir(pki, folder / "certificates")
    finally:
        server.stop()


def test_proxy_from_x509_user_proxy(
    tls: tuple[ServeProcess, GridPKI, Path], tmp_path: Path
) -> None:
    server, pki, ca_dir = tls
    proxy = write_proxy_file(pki.alice_proxy, tmp_path / "proxy.pem")
    env = {"X509_USER_PROXY": str(proxy), "X509_CERT_DIR": str(ca_dir)}
    credentials = Credentials.lookup(env=env)
    with Client(server.base_url, credentials=credentials) as client:
        me = client.whoami()
        assert me.subject == ALICE
        assert me.authenticated_by == "x509"
        jobid = new_jobid()
        assert client.register(jobid).job.owner == ALICE
        client.put_file(jobid, "osb", b"over TLS with a proxy")
        assert client.read(jobid, "osb") == b"over TLS with a proxy"


def test_proxy_of_a_proxy_in_the_default_place(
    tls: tuple[ServeProcess, GridPKI, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, pki, ca_dir = tls
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    write_proxy_file(pki.alice_proxy2, tmp_path / f"x509up_u{os.getuid()}")
    credentials = Credentials.lookup(env={"X509_CERT_DIR": str(ca_dir)})
    assert credentials.cert == tmp_path / f"x509up_u{os.getuid()}"
    with Client(server.base_url, credentials=credentials) as client:
        assert client.whoami().subject == ALICE


def test_the_cli_finds_the_proxy_too(
    tls: tuple[ServeProcess, GridPKI, Path], tmp_path: Path
) -> None:
    server, pki, ca_dir = tls
    proxy = write_proxy_file(pki.alice_proxy, tmp_path / "proxy.pem")
    jobid = new_jobid()
    with Client(server.base_url, credentials=Credentials(cert=proxy, ca_dir=ca_dir)) as client:
        client.register(jobid)
        client.add_tags(jobid, [("color", "green")])
    env = {"X509_USER_PROXY": str(proxy), "X509_CERT_DIR": str(ca_dir), "JP_URL": server.base_url}
    done = subprocess.run(
        [*CLI, "attrs", jobid, "--json"],
        env={k: v for k, v in os.environ.items() if not k.startswith(("JP_", "X509_"))} | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert '"green"' in done.stdout


def test_without_the_ca_dir_the_server_is_not_trusted(
    tls: tuple[ServeProcess, GridPKI, Path], tmp_path: Path
) -> None:
    server, pki, _ca_dir = tls
    proxy = write_proxy_file(pki.alice_proxy, tmp_path / "proxy.pem")
    client = Client(server.base_url, credentials=Credentials(cert=proxy))
    with client, pytest.raises(ConnectionFailed, match="(?i)certificate.verify.failed"):
        client.whoami()


def test_no_credentials_no_identity(tls: tuple[ServeProcess, GridPKI, Path]) -> None:
    server, _pki, ca_dir = tls
    client = Client(server.base_url, credentials=Credentials(ca_dir=ca_dir))
    with client, pytest.raises(Unauthenticated):
        client.whoami()
