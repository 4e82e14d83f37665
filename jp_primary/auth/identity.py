"""The one identity model every authentication method produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    TRUSTED = "trusted"  # services that register and upload on behalf of owners (L&B, WMS)
    INDEXER = "indexer"  # index servers: may subscribe feeds and query all jobs
    ADMIN = "admin"  # reads everything


@dataclass(frozen=True)
class Identity:
    """An authenticated subject.

    ``subject`` is what ownership is recorded against: for X.509 the end-entity DN in the OpenSSL
    slash form (``/C=IT/O=INFN/CN=...``), which is what L&B registrations carry as owner; for
    tokens the ``sub`` claim (prefixed by the issuer for external issuers).
    """

    subject: str
    roles: frozenset[Role] = field(default_factory=frozenset)
    method: str = "token"  # token | x509 | frontend
    dn_rfc4514: str | None = None
    issuer: str | None = None
    groups: frozenset[str] = field(default_factory=frozenset)
    # VOMS FQANs of a verified attribute certificate (``/vo/group/Role=r/Capability=NULL``),
    # in the AC's order: the first is the primary one. Empty without a valid VOMS AC.
    fqans: tuple[str, ...] = ()

    def has(self, role: Role) -> bool:
        return role in self.roles
