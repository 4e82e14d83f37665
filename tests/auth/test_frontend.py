from __future__ import annotations

import pytest

from jp_primary.auth.frontend import DEFAULT_DN_HEADER, TrustedFrontEnds
from jp_primary.errors import ConfigurationError, Unauthenticated

ALICE = "/DC=org/DC=example/O=JP Test/CN=Alice Smith/CN=12345"
ALICE_RFC = "CN=12345,CN=Alice Smith,O=JP Test,DC=example,DC=org"


@pytest.fixture
def frontends() -> TrustedFrontEnds:
    return TrustedFrontEnds(["127.0.0.1", "10.1.0.0/24", "2001:db8::/32"])


@pytest.mark.parametrize("peer", ["127.0.0.1", "10.1.0.77", "2001:db8::5", "::ffff:10.1.0.9"])
@pytest.mark.parametrize("value", [ALICE, ALICE_RFC])
def test_header_from_a_trusted_peer_is_believed_and_normalised(
    frontends: TrustedFrontEnds, peer: str, value: str
) -> None:
    identity = frontends.identity(peer, {DEFAULT_DN_HEADER: value})
    assert identity is not None
    assert identity.subject == ALICE
    assert identity.dn_rfc4514 == ALICE_RFC
    assert identity.method == "frontend"


@pytest.mark.parametrize("peer", ["10.1.1.1", "127.0.0.2", "2001:db9::1", None, "not-an-ip"])
def test_header_from_any_other_peer_is_ignored(
    frontends: TrustedFrontEnds, peer: str | None
) -> None:
    assert frontends.identity(peer, {DEFAULT_DN_HEADER: ALICE}) is None


def test_header_name_is_configurable_and_case_insensitive() -> None:
    frontends = TrustedFrontEnds(["127.0.0.1"], header="X-Client-DN")
    assert frontends.identity("127.0.0.1", {"x-client-dn": ALICE_RFC}) is not None
    assert frontends.identity("127.0.0.1", {DEFAULT_DN_HEADER: ALICE}) is None


def test_empty_header_means_no_client_certificate(frontends: TrustedFrontEnds) -> None:
    assert frontends.identity("127.0.0.1", {DEFAULT_DN_HEADER: ""}) is None


def test_unusable_dn_from_trusted_peer_is_401_without_echoing_it(
    frontends: TrustedFrontEnds,
) -> None:
    with pytest.raises(Unauthenticated) as info:
        frontends.identity("127.0.0.1", {DEFAULT_DN_HEADER: "CN=a/O=secret-ish,DC=x"})
    assert "secret-ish" not in info.value.detail


def test_no_frontends_configured_trusts_nobody() -> None:
    assert TrustedFrontEnds([]).identity("127.0.0.1", {DEFAULT_DN_HEADER: ALICE}) is None


def test_bad_address_refuses_to_start() -> None:
    with pytest.raises(ConfigurationError):
        TrustedFrontEnds(["10.0.0.300"])
