from __future__ import annotations

import pickle
import ssl
from pathlib import Path

import pytest

from jp_primary.auth.tlsproto import ClientCertContextFactory, ca_dir_pems
from jp_primary.auth.tlsserver import H11_PROTOCOL, HTTPTOOLS_PROTOCOL, tls_uvicorn_kwargs
from jp_primary.errors import ConfigurationError
from jp_primary.protocol import TLSListener

from .certs import GridPKI, make_crl


def _context(pki: GridPKI, **kwargs: object) -> ssl.SSLContext:
    cert, key = pki.files("host")
    listener = tls_uvicorn_kwargs(cert, key, **kwargs)["http"]  # type: ignore[arg-type]
    assert isinstance(listener, TLSListener)
    return listener.context.build()


@pytest.mark.parametrize(
    ("mode", "verify"), [("required", ssl.CERT_REQUIRED), ("optional", ssl.CERT_OPTIONAL)]
)
def test_context_verifies_clients_and_allows_proxies(pki: GridPKI, mode: str, verify: int) -> None:
    ctx = _context(pki, ca_file=pki.ca_file, client_cert=mode)
    assert ctx.verify_mode == verify
    assert ctx.verify_flags & ssl.VERIFY_ALLOW_PROXY_CERTS
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert [c["subject"] for c in ctx.get_ca_certs()] == [
        ((("domainComponent", "org"),), (("organizationName", "JP Test CA"),))
    ]


def test_ca_dir_loads_every_pem_whatever_the_file_name(pki: GridPKI, tmp_path: Path) -> None:
    (tmp_path / "a1b2c3d4.0").write_bytes(pki.ca.cert_pem)
    (tmp_path / "other.pem").write_bytes(b"# comment\n" + pki.other_ca.cert_pem)
    (tmp_path / "a1b2c3d4.signing_policy").write_text("access_id_CA X509 '/O=x'\n")
    (tmp_path / "dup.crt").write_bytes(pki.ca.cert_pem)
    assert ca_dir_pems(tmp_path).count("BEGIN CERTIFICATE") == 2
    ctx = _context(pki, ca_dir=tmp_path)
    assert len(ctx.get_ca_certs()) == 2


def test_crls_in_ca_dir_turn_on_chain_revocation_checks(pki: GridPKI, tmp_path: Path) -> None:
    (tmp_path / "a1b2c3d4.0").write_bytes(pki.ca.cert_pem)
    assert not _context(pki, ca_dir=tmp_path).verify_flags & ssl.VERIFY_CRL_CHECK_CHAIN
    (tmp_path / "a1b2c3d4.r0").write_bytes(make_crl(pki.ca, revoked=[]))
    assert _context(pki, ca_dir=tmp_path).verify_flags & ssl.VERIFY_CRL_CHECK_CHAIN


def test_ca_dir_without_certificates_refuses_to_start(tmp_path: Path) -> None:
    (tmp_path / "README").write_text("nothing here")
    with pytest.raises(ConfigurationError):
        ca_dir_pems(tmp_path)


def test_kwargs_shape_and_picklable_listener(pki: GridPKI) -> None:
    cert, key = pki.files("host")
    kwargs = tls_uvicorn_kwargs(cert, key, ca_file=pki.ca_file, client_cert="optional", http="h11")
    # The protocol does the handshake (and logs refusals): uvicorn itself gets no ssl_* setting.
    assert not [k for k in kwargs if k.startswith("ssl")]
    assert kwargs["proxy_headers"] is False
    assert kwargs["h11_max_incomplete_event_size"] == 64 * 1024
    # uvicorn pickles the config for workers > 1; the data here is our own.
    listener = pickle.loads(pickle.dumps(kwargs["http"]))  # noqa: S301
    assert listener == TLSListener(
        ClientCertContextFactory("optional", str(pki.ca_file), None, str(cert), str(key)), "h11"
    )
    assert tls_uvicorn_kwargs(cert, key, ca_file=pki.ca_file)["http"].http == "httptools"
    assert H11_PROTOCOL != HTTPTOOLS_PROTOCOL


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"ca_file": "/nonexistent/ca.pem"}, {"ca_dir": "/nonexistent"}],
)
def test_bad_tls_settings_refuse_to_start(pki: GridPKI, kwargs: dict[str, str]) -> None:
    cert, key = pki.files("host")
    with pytest.raises(ConfigurationError):
        tls_uvicorn_kwargs(cert, key, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        tls_uvicorn_kwargs(cert, key, ca_file=pki.ca_file, client_cert="sometimes")  # type: ignore[arg-type]
