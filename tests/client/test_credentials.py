"""The credential lookup: explicit, then JP_TOKEN, then the proxy (X509_USER_PROXY, then
x509up_u<uid> in the temporary directory), then X509_USER_CERT; CAs from X509_CERT_DIR."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from jp_primary.client import Credentials, CredentialsError, default_proxy_path


def test_explicit_token_wins(tmp_path: Path) -> None:
    env = {"JP_TOKEN": "env-token", "X509_USER_PROXY": str(tmp_path)}
    assert Credentials.lookup(token="given", env=env).token == "given"
    token_file = tmp_path / "t"
    token_file.write_text("from-file\n")
    assert Credentials.lookup(token_file=token_file, env=env).token == "from-file"


def test_environment_token_before_proxy(tmp_path: Path) -> None:
    proxy = tmp_path / "proxy.pem"
    proxy.write_text("x")
    found = Credentials.lookup(env={"JP_TOKEN": "t", "X509_USER_PROXY": str(proxy)})
    assert found.kind == "token"
    assert found.headers() == {"Authorization": "Bearer t"}


def test_x509_user_proxy_then_cert_dir(tmp_path: Path) -> None:
    proxy = tmp_path / "proxy.pem"
    proxy.write_text("x")
    found = Credentials.lookup(env={"X509_USER_PROXY": str(proxy), "X509_CERT_DIR": "/grid/ca"})
    assert found == Credentials(cert=proxy, ca_dir=Path("/grid/ca"))
    assert found.headers() == {}


def test_missing_named_proxy_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="X509_USER_PROXY"):
        Credentials.lookup(env={"X509_USER_PROXY": str(tmp_path / "gone")})


def test_default_proxy_in_the_temporary_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    proxy = tmp_path / f"x509up_u{os.getuid()}"
    assert default_proxy_path({}) == proxy
    assert Credentials.lookup(env={}).kind == "none"
    proxy.write_text("x")
    assert Credentials.lookup(env={}).cert == proxy


def test_user_certificate_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    env = {"X509_USER_CERT": "/home/u/.globus/usercert.pem", "X509_USER_KEY": "/k.pem"}
    found = Credentials.lookup(env=env)
    assert found.cert == Path("/home/u/.globus/usercert.pem")
    assert found.key == Path("/k.pem")


def test_unloadable_certificate_is_a_credentials_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(CredentialsError, match="cannot load"):
        Credentials(cert=bad).ssl_context()
