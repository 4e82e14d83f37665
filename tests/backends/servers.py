"""Real servers on loopback for the backend tests: SeaweedFS (S3), pyftpdlib (FTP, FTPS) and
globus-gridftp-server (FTP)."""

from __future__ import annotations

import datetime as dt
import ftplib
import ipaddress
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import FTPServer

S3_KEY, S3_SECRET = "jp-test-key", "jp-test-secret"
FTP_USER, FTP_PASSWORD = "jp", "jp-secret"
BUCKET = "jp-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed_pem(directory: Path) -> Path:
    """A certificate+key PEM for 127.0.0.1 that also serves as its own CA file."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    pem = directory / "ftps.pem"
    pem.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pem


class ThreadedFTP:
    """A pyftpdlib server in a daemon thread; ``handler`` must be a class made for this server
    alone (pyftpdlib keeps the authorizer and options as class attributes)."""

    def __init__(self, handler: type[FTPHandler]) -> None:
        # Its own IO loop: pyftpdlib's default is one process-wide loop shared by all servers.
        self.server = FTPServer(("127.0.0.1", 0), handler, ioloop=IOLoop())
        self.port = int(self.server.socket.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.server.ioloop.loop(0.05, blocking=False)
        self.server.close_all()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def ftp_server(root: Path, tls_pem: Path | None = None, **extra: Any) -> ThreadedFTP:
    authorizer = DummyAuthorizer()
    authorizer.add_user(FTP_USER, FTP_PASSWORD, str(root), perm="elradfmwMT")
    base: type[FTPHandler] = TLS_FTPHandler if tls_pem else FTPHandler
    attrs: dict[str, Any] = {"authorizer": authorizer, "auth_failed_timeout": 0, **extra}
    if tls_pem:
        attrs |= {
            "certfile": str(tls_pem),
            "tls_control_required": True,
            "tls_data_required": True,
        }
    return ThreadedFTP(type("TestFTPHandler", (base,), attrs))


def s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
        config=Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 1},
        ),
    )


class Seaweed:
    """``weed server -s3`` with an identities file, so signatures and POST policies are checked."""

    def __init__(self, weed: str, directory: Path) -> None:
        ids = {
            "identities": [
                {
                    "name": "jp",
                    "credentials": [{"accessKey": S3_KEY, "secretKey": S3_SECRET}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        (directory / "data").mkdir()
        (directory / "ids.json").write_text(json.dumps(ids))
        ports = {
            name: free_port()
            for name in (
                "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
                "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc", "debug.port",
                "iam.port", "s3.port.iceberg", "s3.port.lance",
            )
        }  # fmt: skip
        args = [f"-{name}={port}" for name, port in ports.items()]
        self.endpoint = f"http://127.0.0.1:{ports['s3.port']}"
        self.log = (directory / "weed.log").open("wb")
        self.process = subprocess.Popen(
            [
                weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                "-master.telemetry=false", f"-dir={directory / 'data'}", "-volume.max=0",
                "-master.volumeSizeLimitMB=64", "-s3", f"-s3.config={directory / 'ids.json'}",
                *args,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 60.0) -> None:
        client = s3_client(self.endpoint)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited with {self.process.returncode}")
            try:
                client.list_buckets()
                client.create_bucket(Bucket=BUCKET)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.25)

    def stop(self) -> None:
        # Throwaway data: weed's graceful shutdown takes seconds and saves nothing worth keeping.
        self.process.kill()
        self.process.wait(timeout=10)
        self.log.close()


def find_weed(venv_bin: Path) -> str | None:
    candidate = venv_bin / "weed"
    return str(candidate) if candidate.exists() else shutil.which("weed")


GRIDFTP_PASSWORD = "jp-grid"  # noqa: S105 (a throwaway account of a throwaway server)


def find_gridftp() -> str | None:
    """globus-gridftp-server from Debian's globus-gridftp-server-progs (in /usr/sbin)."""
    return shutil.which("globus-gridftp-server") or shutil.which(
        "globus-gridftp-server", path="/usr/sbin:/usr/local/sbin"
    )


class GridFTP:
    """A standalone globus-gridftp-server on a loopback port with one clear-text password account
    (``-password-file``). Run as root, the server switches to the account's uid after login and
    refuses root itself, so the account is ``nobody`` and owns the home; run as anyone else, the
    account is that user. Its password file takes only traditional crypt(3) hashes, as made by
    globus-gridftp-password. ``home`` is the login directory: relative paths start there."""

    def __init__(self, binary: str) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="jp-gridftp-"))
        self.directory.chmod(0o755)  # the account may not be the one running the tests
        self.home = self.directory / "home"
        self.home.mkdir()
        if os.geteuid() == 0:
            account = pwd.getpwnam("nobody")
            os.chown(self.home, account.pw_uid, account.pw_gid)
        else:
            account = pwd.getpwuid(os.geteuid())
        self.user = account.pw_name
        hashed = subprocess.run(
            ["perl", "-e", "print crypt($ARGV[0], $ARGV[1])", GRIDFTP_PASSWORD, "jp"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        passwords = self.directory / "passwd"
        passwords.write_text(
            f"{self.user}:{hashed}:{account.pw_uid}:{account.pw_gid}::{self.home}:/bin/sh\n"
        )
        self.port = free_port()
        self.log_path = self.directory / "gridftp.log"
        self.log = (self.directory / "stderr.log").open("wb")
        self.process = subprocess.Popen(
            [
                binary, "-p", str(self.port), "-control-interface", "127.0.0.1",
                "-data-interface", "127.0.0.1", "-password-file", str(passwords),
                "-d", "ERROR,WARN,INFO", "-l", str(self.log_path),
                "-c", "/dev/null",  # not the site's /etc/gridftp.conf
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def url(self, base: str) -> str:
        return f"ftp://{self.user}:{GRIDFTP_PASSWORD}@127.0.0.1:{self.port}/{base}"

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"globus-gridftp-server exited with {self.process.returncode}: "
                    f"{(self.directory / 'stderr.log').read_text(errors='replace')[-2000:]}"
                )
            try:
                conn = ftplib.FTP()  # noqa: S321 (the test server speaks plain FTP)
                conn.connect("127.0.0.1", self.port, timeout=5)
                conn.login(self.user, GRIDFTP_PASSWORD)
                conn.quit()
                return
            except (OSError, EOFError, ftplib.Error):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.directory, ignore_errors=True)
