"""VOMS attribute certificates in proxies made by the real ``voms-proxy-fake``: verified through
the vomsdir (``.lsc`` files or server certificates), FQANs exposed, forged ACs ignored."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jp_primary.auth.identity import Identity, Role
from jp_primary.auth.policy import parse_policy
from jp_primary.auth.voms import VomsTrust, fqan_key
from jp_primary.auth.x509 import identity_from_chain
from jp_primary.errors import ConfigurationError

from .served import ServeProcess, run_cli
from .vomsfake import VO, VomsPKI, make_voms_pki, write_lsc

ALICE = "/DC=org/DC=example/O=JP Test/CN=Alice Smith/CN=12345"
FQANS = (f"/{VO}/Role=NULL/Capability=NULL", f"/{VO}/analysis/Role=production/Capability=NULL")


@pytest.fixture(scope="module")
def vpki(tmp_path_factory: pytest.TempPathFactory) -> VomsPKI:
    pki = make_voms_pki(tmp_path_factory.mktemp("voms"))
    write_lsc(pki.vomsdir, pki.ca)
    return pki


@pytest.fixture(scope="module")
def trust(vpki: VomsPKI) -> VomsTrust:
    return VomsTrust(vpki.vomsdir, vpki.ca_dir)


@pytest.fixture(scope="module")
def good_proxy(vpki: VomsPKI) -> Path:
    return vpki.proxy("good", fqans=FQANS)


@pytest.fixture(scope="module")
def forged_proxy(vpki: VomsPKI) -> Path:
    """The AC is signed by a server certificate with the right DNs from an untrusted CA."""
    return vpki.proxy("forged", signer="rogue", fqans=(f"/{VO}/admins/Role=NULL",))


def test_voms_proxy_fake_fqans_are_verified_through_the_lsc_file(
    vpki: VomsPKI, trust: VomsTrust, good_proxy: Path
) -> None:
    identity = identity_from_chain(vpki.chain(good_proxy), voms=trust)
    assert identity.subject == ALICE
    assert identity.fqans == FQANS  # in the AC's order: the first is the primary FQAN


def test_forged_ac_with_a_wrong_signer_is_ignored(
    vpki: VomsPKI, trust: VomsTrust, forged_proxy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="jp_primary.auth.voms"):
        identity = identity_from_chain(vpki.chain(forged_proxy), voms=trust)
    assert identity.subject == ALICE  # the proxy itself is valid: its owner, without FQANs
    assert identity.fqans == ()
    assert "not signed by a trusted CA" in caplog.text


def test_server_certificate_in_the_vomsdir_instead_of_an_lsc_file(
    vpki: VomsPKI, good_proxy: Path, forged_proxy: Path, tmp_path: Path
) -> None:
    (tmp_path / VO).mkdir()
    (tmp_path / VO / "voms.pem").write_bytes(vpki.files("voms")[0].read_bytes())
    trust = VomsTrust(tmp_path, None)
    assert identity_from_chain(vpki.chain(good_proxy), voms=trust).fqans == FQANS
    # The rogue server certificate has the same subject but another key: the signature fails.
    assert identity_from_chain(vpki.chain(forged_proxy), voms=trust).fqans == ()


def test_expired_ac_is_ignored(vpki: VomsPKI, trust: VomsTrust) -> None:
    old = vpki.proxy("old-ac", fqans=FQANS, extra=["-vomslife", "1", "-pastac", "3:00"])
    assert identity_from_chain(vpki.chain(old), voms=trust).fqans == ()


def test_an_ac_with_a_critical_extension_it_cannot_handle_is_ignored(
    vpki: VomsPKI, trust: VomsTrust
) -> None:
    """Such as AC targeting; an unknown critical extension stands in for it (the tool's own
    -target option writes no AC on this version)."""
    critical = vpki.proxy("critical", fqans=FQANS, extra=["-acextension", "1.2.3.4.5/true:x"])
    harmless = vpki.proxy("harmless", fqans=FQANS, extra=["-acextension", "1.2.3.4.5/false:x"])
    assert identity_from_chain(vpki.chain(critical), voms=trust).fqans == ()
    assert identity_from_chain(vpki.chain(harmless), voms=trust).fqans == FQANS


def test_without_a_vomsdir_acs_are_ignored(vpki: VomsPKI, good_proxy: Path) -> None:
    assert identity_from_chain(vpki.chain(good_proxy), voms=None).fqans == ()
    missing = VomsTrust.from_settings(vpki.folder / "nowhere", None)
    assert missing is None


def test_an_ac_for_another_vo_host_needs_its_own_lsc(
    vpki: VomsPKI, good_proxy: Path, tmp_path: Path
) -> None:
    (tmp_path / "othervo").mkdir()
    trust = VomsTrust(tmp_path, vpki.ca_dir)  # no testvo entry at all
    assert identity_from_chain(vpki.chain(good_proxy), voms=trust).fqans == ()


def test_policy_rules_by_fqan_and_by_token_groups() -> None:
    policy = parse_policy(
        '[trusted]\nfqans = ["/testvo/analysis/Role=production"]\n'
        '[admin]\nfqans = ["/testvo"]\n'
        'groups = [{ issuer = "https://iam.example.org/", group = "/jp/admins" }]\n'
    )
    member = Identity(ALICE, method="x509", fqans=(f"/{VO}/Role=NULL/Capability=NULL",))
    producer = Identity(ALICE, method="x509", fqans=FQANS)
    assert policy.roles_for(member) == {Role.ADMIN}
    assert policy.roles_for(producer) == {Role.ADMIN, Role.TRUSTED}
    assert policy.roles_for(Identity(ALICE, method="x509")) == frozenset()
    token = Identity(
        "https://iam.example.org/#u1",
        issuer="https://iam.example.org/",
        groups=frozenset({"/jp/admins"}),
    )
    assert policy.roles_for(token) == {Role.ADMIN}
    assert fqan_key("/vo/g/Role=NULL/Capability=NULL") == fqan_key("/vo/g") == "/vo/g"
    with pytest.raises(ConfigurationError):
        parse_policy('[admin]\nfqans = ["testvo"]\n')


@pytest.fixture(scope="module")
def voms_server(
    vpki: VomsPKI, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServeProcess]:
    """``jp-primary serve`` over TLS with JP_VOMS_DIR and a policy granting a role by FQAN."""
    import ssl

    folder = tmp_path_factory.mktemp("voms-serve")
    policy = folder / "policy.toml"
    policy.write_text('[trusted]\nfqans = ["/testvo/analysis/Role=production"]\n')
    settings = {
        "JP_HOME": str(folder / "home"),
        "JP_DATABASE_URL": database_url,
        "JP_POLICY_FILE": str(policy),
        "JP_VOMS_DIR": str(vpki.vomsdir),
        "JP_VOMS_CA_DIR": str(vpki.ca_dir),
    }
    assert run_cli(settings, "migrate").returncode == 0
    cert, key = vpki.files("host")
    args = ["--tls-cert", str(cert), "--tls-key", str(key), "--ca-dir", str(vpki.ca_dir)]
    verify = ssl.create_default_context(cafile=str(vpki.folder / "ca.pem"))
    server = ServeProcess(settings, folder / "serve.log", args, verify=verify)
    server.launch()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _whoami(server: ServeProcess, vpki: VomsPKI, proxy: Path) -> httpx.Response:
    import ssl

    ctx = ssl.create_default_context(cafile=str(vpki.folder / "ca.pem"))
    ctx.load_cert_chain(proxy)  # voms-proxy-fake writes certificate, key and chain in one file
    return httpx.get(f"{server.base_url}/v1/whoami", verify=ctx, timeout=30)


@pytest.mark.slow
def test_whoami_over_tls_shows_the_fqans_of_a_voms_proxy(
    voms_server: ServeProcess, vpki: VomsPKI, good_proxy: Path, forged_proxy: Path
) -> None:
    good = _whoami(voms_server, vpki, good_proxy)
    assert good.status_code == 200, good.text
    assert good.json() == {
        "subject": ALICE,
        "roles": ["trusted"],  # granted by FQAN in the policy file
        "groups": [],
        "fqans": list(FQANS),
        "authenticated_by": "x509",
        "issuer": None,
    }
    forged = _whoami(voms_server, vpki, forged_proxy).json()
    assert (forged["subject"], forged["fqans"], forged["roles"]) == (ALICE, [], [])
