"""Distinguished names: one internal form, printed as OpenSSL slash form or RFC 4514.

A DN is a tuple of RDNs in DER order (most significant first, ``C=`` / ``DC=`` before ``CN=``);
an RDN is a tuple of ``(type, value)`` pairs. Types are canonical OpenSSL short names (``CN``,
``DC``, ``emailAddress``, ...) or dotted OIDs; values are the decoded text, never altered.

The slash form is what L&B registrations carry as owner (``X509_NAME_oneline`` style): bytes outside
printable ASCII appear as ``\\xHH`` of their UTF-8 encoding. It has no escaping for ``/`` and ``+``,
so a value containing ``/TYPE=`` or ``+TYPE=`` would read back as a different DN; such DNs are
refused (``DNError``) so that two different names can never print the same (docs/auth.md).
"""

from __future__ import annotations

import re

from cryptography import x509

RDN = tuple[tuple[str, str], ...]
DN = tuple[RDN, ...]


class DNError(ValueError):
    """A DN that cannot be parsed, or whose slash form would be ambiguous."""


# Short names OpenSSL prints for the attribute types seen in grid certificates.
_SHORT_NAMES = {
    "2.5.4.6": "C",
    "2.5.4.8": "ST",
    "2.5.4.7": "L",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.3": "CN",
    "2.5.4.9": "street",
    "2.5.4.5": "serialNumber",
    "2.5.4.4": "SN",
    "2.5.4.42": "GN",
    "2.5.4.12": "title",
    "2.5.4.17": "postalCode",
    "2.5.4.46": "dnQualifier",
    "2.5.4.65": "pseudonym",
    "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
    "1.2.840.113549.1.9.1": "emailAddress",
}
# Spellings accepted on input (case-insensitive) for the same attribute types.
_ALIASES = (
    {name.lower(): name for name in _SHORT_NAMES.values()}
    | {oid: name for oid, name in _SHORT_NAMES.items()}
    | {
        "commonname": "CN",
        "countryname": "C",
        "localityname": "L",
        "stateorprovincename": "ST",
        "organizationname": "O",
        "organizationalunitname": "OU",
        "domaincomponent": "DC",
        "userid": "UID",
        "e": "emailAddress",
        "email": "emailAddress",
        "surname": "SN",
        "givenname": "GN",
    }
)
_TYPE = r"[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+"
# A value is refused when its slash form would read back differently: "/TYPE=" or "+TYPE=" start
# another attribute, and a literal "\xHH" reads back as an escaped byte.
_AMBIGUOUS = re.compile(rf"[/+](?:{_TYPE})=|\\x[0-9A-Fa-f]{{2}}")
_SLASH_SPLIT = re.compile(rf"/(?=(?:{_TYPE})=)")
_PLUS_SPLIT = re.compile(rf"\+(?=(?:{_TYPE})=)")
_HEX_ESCAPE = re.compile(r"(?:\\x[0-9A-Fa-f]{2})+")


def canonical_type(name: str) -> str:
    key = name.strip()
    if not re.fullmatch(_TYPE, key):
        raise DNError("malformed attribute type in DN")
    return _ALIASES.get(key.lower(), key)


def from_name(name: x509.Name) -> DN:
    """The DN of a certificate subject or issuer."""
    rdns = []
    for rdn in name.rdns:
        pairs = []
        for attr in rdn:
            oid = attr.oid.dotted_string
            value = attr.value if isinstance(attr.value, str) else attr.value.hex()
            pairs.append((_SHORT_NAMES.get(oid, oid), value))
        rdns.append(tuple(pairs))
    return _checked(tuple(rdns))


def _checked(dn: DN) -> DN:
    if not dn:
        raise DNError("empty DN")
    for rdn in dn:
        for _, value in rdn:
            if _AMBIGUOUS.search(value):
                raise DNError(
                    "a DN value contains '/TYPE=', '+TYPE=' or '\\xHH': ambiguous slash form"
                )
    return dn


def _oneline_value(value: str) -> str:
    raw = value.encode("utf-8", "surrogateescape")
    return "".join(chr(b) if 0x20 <= b <= 0x7E else f"\\x{b:02X}" for b in raw)


def to_slash(dn: DN) -> str:
    """``/DC=org/DC=example/O=JP Test/CN=Alice Smith/CN=12345``."""
    return "".join(
        "/" + "+".join(f"{t}={_oneline_value(v)}" for t, v in rdn) for rdn in _checked(dn)
    )


def _rfc4514_value(value: str) -> str:
    escaped = re.sub(r'([\\,+"<>;=])', r"\\\1", value)
    if escaped[:1] in {" ", "#"}:
        escaped = "\\" + escaped
    if escaped.endswith(" ") and not escaped.endswith("\\ "):
        escaped = escaped[:-1] + "\\ "
    return escaped.replace("\0", "\\00")


def to_rfc4514(dn: DN) -> str:
    """``CN=12345,CN=Alice Smith,O=JP Test,DC=example,DC=org`` (reversed order, RFC 4514)."""
    return ",".join(
        "+".join(f"{t}={_rfc4514_value(v)}" for t, v in rdn) for rdn in reversed(_checked(dn))
    )


def _decode_hex_escapes(match: re.Match[str]) -> str:
    raw = bytes.fromhex(match.group(0).replace("\\x", ""))
    return raw.decode("utf-8", "surrogateescape")


def parse_slash(text: str) -> DN:
    """Parse the OpenSSL slash form; ``\\xHH`` escapes are decoded (as UTF-8)."""
    if not text.startswith("/"):
        raise DNError("slash-form DN must start with '/'")
    rdns = []
    for part in _SLASH_SPLIT.split(text[1:]):
        pairs = []
        for ava in _PLUS_SPLIT.split(part):
            name, sep, value = ava.partition("=")
            if not sep:
                raise DNError("DN component without '='")
            pairs.append((canonical_type(name), _HEX_ESCAPE.sub(_decode_hex_escapes, value)))
        rdns.append(tuple(pairs))
    return _checked(tuple(rdns))


_SPECIALS = ' "#+,;<=>\\'


def _read_value(text: str, i: int) -> tuple[str, int]:
    """Read one RFC 4514 attribute value from ``text[i:]``; return it and the stop index."""
    if text[i : i + 1] == "#":
        raise DNError("hex-encoded (#...) DN values are not supported")
    out = bytearray()
    trailing = 0  # unescaped spaces at the end, which RFC 4514 says are not part of the value
    while i < len(text) and text[i] not in ",;+":
        char = text[i]
        if char == "\\":
            nxt = text[i + 1 : i + 3]
            if len(nxt) == 2 and all(c in "0123456789abcdefABCDEF" for c in nxt):
                out += bytes.fromhex(nxt)
                i += 3
            elif nxt[:1] and nxt[0] in _SPECIALS:
                out += nxt[0].encode()
                i += 2
            else:
                raise DNError("bad escape in DN")
            trailing = 0
            continue
        trailing = trailing + 1 if char == " " else 0
        out += char.encode("utf-8", "surrogateescape")
        i += 1
    value = bytes(out[: len(out) - trailing] if trailing else out)
    return value.decode("utf-8", "surrogateescape"), i


def parse_rfc4514(text: str) -> DN:
    """Parse an RFC 4514 (or RFC 2253) string; the result is in DER order (reversed)."""
    rdns: list[RDN] = []
    pairs: list[tuple[str, str]] = []
    i = 0
    while True:
        eq = text.find("=", i)
        if eq < 0:
            raise DNError("DN component without '='")
        name = canonical_type(text[i:eq])
        value, i = _read_value(text, eq + 1)
        pairs.append((name, value))
        if i >= len(text) or text[i] in ",;":
            rdns.append(tuple(pairs))
            pairs = []
        if i >= len(text):
            break
        i += 1
    return _checked(tuple(reversed(rdns)))


def parse(text: str) -> DN:
    """Parse a DN in slash form (leading ``/``) or RFC 4514 form."""
    # No stripping: in the slash form, surrounding whitespace belongs to the first/last value.
    return parse_slash(text) if text.startswith("/") else parse_rfc4514(text)


def normalize(text: str) -> str:
    """Any accepted spelling of a DN → its slash form (what ownership is recorded against)."""
    return to_slash(parse(text))
