from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from jp_primary.auth.x509 import identity_from_chain, is_proxy, proxy_policy
from jp_primary.errors import Unauthenticated

from .certs import PCI_INDEPENDENT, PCI_LIMITED_PATHLEN_1, Credential, GridPKI, make_proxy

ALICE_DN = "/DC=org/DC=example/O=JP Test/CN=Alice Smith/CN=12345"


def verified(cred: Credential, pki: GridPKI) -> list[bytes]:
    """What the TLS layer hands over: the presented chain plus the trusted CA."""
    return [*cred.chain_pems, pki.ca.cert_pem]


@pytest.mark.parametrize("name", ["alice", "alice_proxy", "alice_proxy2"])
def test_eec_and_proxies_map_to_the_eec_dn(pki: GridPKI, name: str) -> None:
    identity = identity_from_chain(verified(getattr(pki, name), pki))
    assert identity.subject == ALICE_DN
    assert identity.dn_rfc4514 == "CN=12345,CN=Alice Smith,O=JP Test,DC=example,DC=org"
    assert identity.method == "x509"
    assert identity.roles == frozenset()


def test_pem_items_may_be_str_and_hold_several_certificates(pki: GridPKI) -> None:
    one_blob = b"".join(verified(pki.alice_proxy2, pki)).decode()
    assert identity_from_chain([one_blob]).subject == ALICE_DN


def test_chain_order_after_the_leaf_does_not_matter(pki: GridPKI) -> None:
    leaf, *rest = verified(pki.alice_proxy2, pki)
    assert identity_from_chain([leaf, *reversed(rest)]).subject == ALICE_DN


def test_proxy_detection_and_policy(pki: GridPKI) -> None:
    assert not is_proxy(pki.alice.cert)
    assert is_proxy(pki.alice_proxy.cert)
    assert proxy_policy(pki.alice_proxy.cert) == "1.3.6.1.5.5.7.21.1"
    limited = make_proxy(pki.alice, pci=PCI_LIMITED_PATHLEN_1)
    assert proxy_policy(limited.cert) == "1.3.6.1.4.1.3536.1.1.1.9"
    assert identity_from_chain(verified(limited, pki)).subject == ALICE_DN


def test_user_dn_ending_in_cn_is_not_mistaken_for_a_proxy(pki: GridPKI) -> None:
    # Bob's EEC ends in CN=67890 like a proxy would; without the extension it is the identity.
    assert identity_from_chain(verified(pki.bob, pki)).subject.endswith("/CN=Bob Jones/CN=67890")


def test_proxy_signed_by_another_user_is_refused(pki: GridPKI) -> None:
    with pytest.raises(Unauthenticated, match="not signed by its issuer"):
        identity_from_chain(verified(pki.forged_proxy, pki))


def _rdn(oid: x509.ObjectIdentifier, value: str) -> x509.RelativeDistinguishedName:
    return x509.RelativeDistinguishedName([x509.NameAttribute(oid, value)])


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param([(NameOID.ORGANIZATION_NAME, "1")], id="non-CN RDN"),
        pytest.param([(NameOID.COMMON_NAME, "1"), (NameOID.COMMON_NAME, "2")], id="two RDNs"),
        pytest.param([], id="same subject"),
    ],
)
def test_proxy_subject_must_be_issuer_plus_one_cn(
    pki: GridPKI, tail: list[tuple[x509.ObjectIdentifier, str]]
) -> None:
    rdns = [*pki.alice.cert.subject.rdns, *(_rdn(o, v) for o, v in tail)]
    bad = make_proxy(pki.alice, subject=x509.Name(rdns))  # properly signed by Alice
    with pytest.raises(Unauthenticated, match="does not extend"):
        identity_from_chain(verified(bad, pki))


def test_proxy_claiming_another_users_name_is_refused(pki: GridPKI) -> None:
    rdns = [*pki.bob.cert.subject.rdns, _rdn(NameOID.COMMON_NAME, "1")]
    bad = make_proxy(pki.alice, subject=x509.Name(rdns))  # Alice signs "Bob + CN=1"
    with pytest.raises(Unauthenticated, match="does not extend"):
        identity_from_chain(verified(bad, pki))


def test_multi_valued_last_rdn_is_refused(pki: GridPKI) -> None:
    last = x509.RelativeDistinguishedName(
        [x509.NameAttribute(NameOID.COMMON_NAME, "1"), x509.NameAttribute(NameOID.USER_ID, "u")]
    )
    bad = make_proxy(pki.alice, subject=x509.Name([*pki.alice.cert.subject.rdns, last]))
    with pytest.raises(Unauthenticated, match="does not extend"):
        identity_from_chain(verified(bad, pki))


def test_independent_proxy_is_refused(pki: GridPKI) -> None:
    independent = make_proxy(pki.alice, pci=PCI_INDEPENDENT)
    with pytest.raises(Unauthenticated, match="policy"):
        identity_from_chain(verified(independent, pki))


def test_missing_issuer_is_refused(pki: GridPKI) -> None:
    with pytest.raises(Unauthenticated, match="missing"):
        identity_from_chain([pki.alice_proxy2.cert_pem, pki.ca.cert_pem])


def test_expired_or_future_certificates_are_refused(pki: GridPKI) -> None:
    with pytest.raises(Unauthenticated, match="expired"):
        identity_from_chain(verified(pki.expired, pki))
    later = datetime.now(UTC) + timedelta(days=2)  # the proxies live one day
    with pytest.raises(Unauthenticated, match="expired"):
        identity_from_chain(verified(pki.alice_proxy, pki), now=later)


def test_ca_certificate_is_not_an_identity(pki: GridPKI) -> None:
    with pytest.raises(Unauthenticated, match="CA"):
        identity_from_chain([pki.ca.cert_pem])


def test_garbage_and_empty_chains_are_refused() -> None:
    with pytest.raises(Unauthenticated):
        identity_from_chain([b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
    with pytest.raises(Unauthenticated):
        identity_from_chain([])
