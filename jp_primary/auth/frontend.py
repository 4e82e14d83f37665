"""Trusted front ends: a TLS-terminating proxy that passes the verified client DN in a header.

The header is believed only when the TCP peer is one of the configured front-end addresses; from
any other peer it is ignored (anyone can send a header). The front end must overwrite the header
on every request (nginx ``proxy_set_header``, Apache ``RequestHeader set``) so that clients
cannot inject it.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping

from jp_primary.auth import dn
from jp_primary.auth.identity import Identity
from jp_primary.errors import ConfigurationError, Unauthenticated

DEFAULT_DN_HEADER = "X-SSL-Client-S-DN"
log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(addresses: Iterable[str]) -> tuple[Network, ...]:
    """``10.0.0.5``, ``10.0.0.0/24``, ``::1`` ... → networks; a bad entry refuses to start."""
    networks = []
    for address in addresses:
        try:
            networks.append(ipaddress.ip_network(address.strip(), strict=False))
        except ValueError:
            raise ConfigurationError(f"invalid trusted front-end address {address!r}") from None
    return tuple(networks)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


class TrustedFrontEnds:
    def __init__(self, addresses: Iterable[str], header: str = DEFAULT_DN_HEADER) -> None:
        self.networks = parse_networks(addresses)
        self.header = header

    def is_trusted(self, peer_host: str | None) -> bool:
        if not peer_host or not self.networks:
            return False
        try:
            address = ipaddress.ip_address(peer_host.strip("[]"))
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in net for net in self.networks)

    def identity(self, peer_host: str | None, headers: Mapping[str, str]) -> Identity | None:
        """The identity a trusted front end vouches for; None when there is none to believe."""
        value = _header(headers, self.header)
        if value is None or not value.strip():
            return None  # no client certificate at the front end: anonymous
        if not self.is_trusted(peer_host):
            log.debug("ignoring %s header from untrusted peer %s", self.header, peer_host)
            return None
        try:
            name = dn.parse(value)
        except dn.DNError as exc:
            raise Unauthenticated(f"unusable client DN from the front end: {exc}") from None
        return Identity(
            subject=dn.to_slash(name), method="frontend", dn_rfc4514=dn.to_rfc4514(name)
        )
