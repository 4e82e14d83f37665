"""The policy file (``JP_POLICY_FILE``, TOML): who holds the trusted, indexer and admin roles.

One table per role; any matching entry grants it (format in docs/auth.md)::

    [trusted]
    dns = ["/DC=org/DC=example/O=JP Test/CN=host/lb.example.org"]  # exact, slash or RFC 4514
    dn_globs = ["/DC=org/DC=example/O=JP Services/CN=host/*"]     # fnmatch on the slash form
    dn_regexes = ['/DC=org/DC=example/O=JP Services/CN=lb[0-9]+']  # re.fullmatch, slash form
    subjects = ["importer"]                                       # exact subject, any method
    tokens = [{ issuer = "https://iam.example.org/", sub = "8f2c..." }]
    groups = [{ issuer = "https://iam.example.org/", group = "/jp/services" }]
    fqans = ["/dteam/jp/Role=service"]          # a verified VOMS FQAN of an X.509 proxy

DN entries match only certificate identities (TLS client certificates and trusted front ends), so
an operator-issued token whose subject merely looks like a DN is matched by ``subjects`` only.
Roles are added to those an identity already has (service tokens keep their embedded roles).
FQANs match whole (``/vo/group`` is ``/vo/group/Role=NULL/Capability=NULL``, VOMS convention):
``/dteam/jp`` matches a member of that group without a role, ``/dteam/jp/Role=service`` only one
holding that role; groups of external tokens are matched by ``groups``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jp_primary.auth import dn
from jp_primary.auth.identity import Identity, Role
from jp_primary.auth.issuers import external_subject
from jp_primary.auth.voms import fqan_key
from jp_primary.errors import ConfigurationError

_DN_METHODS = {"x509", "frontend"}
_KEYS = {"dns", "dn_globs", "dn_regexes", "subjects", "tokens", "groups", "fqans"}


@dataclass(frozen=True)
class RoleRule:
    """Who holds one role."""

    dns: frozenset[str] = frozenset()
    dn_globs: tuple[str, ...] = ()
    dn_regexes: tuple[re.Pattern[str], ...] = ()
    subjects: frozenset[str] = frozenset()
    groups: frozenset[tuple[str, str]] = frozenset()  # (issuer, group)
    fqans: frozenset[str] = frozenset()  # as fqan_key() spells them

    def matches(self, identity: Identity) -> bool:
        if identity.subject in self.subjects:
            return True
        if self.fqans and any(fqan_key(f) in self.fqans for f in identity.fqans):
            return True
        if identity.issuer is not None and any(
            (identity.issuer, g) in self.groups for g in identity.groups
        ):
            return True
        if identity.method not in _DN_METHODS:
            return False
        subject = identity.subject
        return (
            subject in self.dns
            or any(fnmatch.fnmatchcase(subject, g) for g in self.dn_globs)
            or any(r.fullmatch(subject) for r in self.dn_regexes)
        )


class RolePolicy:
    def __init__(self, rules: Mapping[Role, RoleRule] | None = None) -> None:
        self.rules = dict(rules or {})

    def roles_for(self, identity: Identity) -> frozenset[Role]:
        return frozenset(role for role, rule in self.rules.items() if rule.matches(identity))

    def apply(self, identity: Identity) -> Identity:
        """The identity with the policy's roles added."""
        extra = self.roles_for(identity) - identity.roles
        if not extra:
            return identity
        return dataclasses.replace(identity, roles=identity.roles | extra)


def _strings(table: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigurationError(f"{where}.{key} must be a list of strings")
    return value


def _pairs(table: Mapping[str, Any], key: str, second: str, where: str) -> list[tuple[str, str]]:
    value = table.get(key, [])
    items: list[dict[str, Any]] = value if isinstance(value, list) else [{}]
    if not all(isinstance(v, dict) and {"issuer", second} == set(v) for v in items):
        raise ConfigurationError(f"{where}.{key} must be a list of {{issuer, {second}}} tables")
    return [(str(v["issuer"]), str(v[second])) for v in items]


def _rule(table: Mapping[str, Any], where: str) -> RoleRule:
    unknown = set(table) - _KEYS
    if unknown:
        raise ConfigurationError(f"{where}: unknown keys {sorted(unknown)}")
    try:
        dns = frozenset(dn.normalize(d) for d in _strings(table, "dns", where))
        regexes = tuple(re.compile(r) for r in _strings(table, "dn_regexes", where))
    except (dn.DNError, re.error) as exc:
        raise ConfigurationError(f"{where}: {exc}") from None
    tokens = {external_subject(i, s) for i, s in _pairs(table, "tokens", "sub", where)}
    return RoleRule(
        dns=dns,
        dn_globs=tuple(_strings(table, "dn_globs", where)),
        dn_regexes=regexes,
        subjects=frozenset(_strings(table, "subjects", where)) | tokens,
        groups=frozenset(_pairs(table, "groups", "group", where)),
        fqans=frozenset(fqan_key(f) for f in _fqans(table, where)),
    )


def _fqans(table: Mapping[str, Any], where: str) -> list[str]:
    fqans = _strings(table, "fqans", where)
    bad = [f for f in fqans if not f.startswith("/") or len(f) < 2]
    if bad:
        raise ConfigurationError(f"{where}.fqans: an FQAN starts with /<vo>, got {bad}")
    return fqans


def parse_policy(text: str, where: str = "policy") -> RolePolicy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{where}: {exc}") from None
    unknown = set(data) - {r.value for r in Role}
    if unknown or not all(isinstance(t, dict) for t in data.values()):
        raise ConfigurationError(
            f"{where}: expected tables among [trusted], [indexer], [admin]; got {sorted(data)}"
        )
    return RolePolicy(
        {Role(name): _rule(table, f"{where}[{name}]") for name, table in data.items()}
    )


def load_policy(path: Path | None) -> RolePolicy:
    """Read the policy file; None → an empty policy (roles only from service tokens)."""
    if path is None:
        return RolePolicy()
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigurationError(f"cannot read policy file {path}: {exc}") from None
    return parse_policy(text, str(path))
