from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from jp_primary.auth import dn

ALICE_SLASH = "/DC=org/DC=example/O=JP Test/CN=Alice Smith/CN=12345"
ALICE_RFC = "CN=12345,CN=Alice Smith,O=JP Test,DC=example,DC=org"


def test_slash_and_rfc4514_forms_name_the_same_dn() -> None:
    assert dn.parse(ALICE_SLASH) == dn.parse(ALICE_RFC)
    assert dn.normalize(ALICE_RFC) == ALICE_SLASH
    assert dn.to_rfc4514(dn.parse(ALICE_SLASH)) == ALICE_RFC


def test_trailing_numeric_cn_is_part_of_the_dn() -> None:
    parsed = dn.parse(ALICE_SLASH)
    assert parsed[-1] == (("CN", "12345"),)
    assert len(parsed) == 5


def test_type_spellings_are_canonicalised_values_are_not() -> None:
    assert dn.normalize("cn=alice,commonName=Bob,2.5.4.10=Org,E=a@b") == (
        "/emailAddress=a@b/O=Org/CN=Bob/CN=alice"
    )
    assert dn.normalize("CN=Alice") != dn.normalize("CN=alice")


def test_rfc4514_escapes_and_hex_utf8() -> None:
    parsed = dn.parse(r"CN=Ji\C5\99\C3\AD Novák\, jr.,O=a\+b,DC=cz")
    assert parsed == ((("DC", "cz"),), (("O", "a+b"),), (("CN", "Jiří Novák, jr."),))
    assert dn.to_slash(parsed) == "/DC=cz/O=a+b/CN=Ji\\xC5\\x99\\xC3\\xAD Nov\\xC3\\xA1k, jr."
    assert dn.parse(dn.to_slash(parsed)) == parsed
    assert dn.parse(dn.to_rfc4514(parsed)) == parsed


def test_multi_valued_rdn_in_both_forms() -> None:
    parsed = dn.parse("UID=jdoe+CN=John Doe,O=Example")
    assert parsed == ((("O", "Example"),), (("UID", "jdoe"), ("CN", "John Doe")))
    assert dn.to_slash(parsed) == "/O=Example/UID=jdoe+CN=John Doe"
    assert dn.parse("/O=Example/UID=jdoe+CN=John Doe") == parsed


def test_service_cn_with_slash_is_one_value() -> None:
    assert dn.parse("/DC=cz/O=CESNET/CN=host/lb.cesnet.cz")[-1] == (("CN", "host/lb.cesnet.cz"),)


@pytest.mark.parametrize(
    "text",
    [
        "CN=a/O=b,DC=c",  # would print as /DC=c/CN=a/O=b: a different DN
        r"CN=a\+O=b",  # a value "a+O=b" would read back as two attributes
        r"CN=a\\x41",  # a literal \x41 would read back as "A"
        "/O=a\\x5Cx41",
        "CN",
        "",
        "/",
        "O=x,CN=#04024869",
        "CN=bad\\q",
        "C N=x",
    ],
)
def test_unparseable_or_ambiguous_dns_are_refused(text: str) -> None:
    with pytest.raises(dn.DNError):
        dn.parse(text)


def test_from_certificate_name_uses_openssl_short_names() -> None:
    name = x509.Name(
        [
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "IT")]),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.EMAIL_ADDRESS, "a@b")]),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, "X")]),
        ]
    )
    parsed = dn.from_name(name)
    assert dn.to_slash(parsed) == "/C=IT/emailAddress=a@b/CN=X"
    assert dn.to_rfc4514(parsed) == "CN=X,emailAddress=a@b,C=IT"


_TYPES = st.sampled_from(["C", "O", "OU", "CN", "DC", "UID", "emailAddress", "1.2.3.4"])
_VALUES = st.text(min_size=1, max_size=12).filter(lambda v: not dn._AMBIGUOUS.search(v))
_RDNS = st.lists(st.tuples(_TYPES, _VALUES), min_size=1, max_size=2).map(tuple)
_DNS = st.lists(_RDNS, min_size=1, max_size=5).map(tuple)


@given(_DNS)
def test_both_forms_read_back_to_the_same_dn(name: dn.DN) -> None:
    # Reading back exactly is what makes the printed forms injective: two different DNs
    # cannot print the same string, or that string would read back as both.
    assert dn.parse(dn.to_slash(name)) == name
    assert dn.parse(dn.to_rfc4514(name)) == name
