"""Who may call atende directly, without a configured trunk."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Loopback and private networks: a softphone on the same machine or LAN just works, while a
# server exposed to the internet does not become an open relay for scanners' INVITEs.
DEFAULT_DIRECT = (
    "127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
    "100.64.0.0/10", "169.254.0.0/16", "fc00::/7", "fe80::/10",
)


def parse_cidrs(values: Iterable[str]) -> list[IpNetwork]:
    nets: list[IpNetwork] = []
    for v in values:
        v = v.strip()
        if v:
            nets.append(ipaddress.ip_network(v, strict=False))
    return nets


def in_networks(host: str, networks: Iterable[IpNetwork], v4_mapped: bool = False) -> bool:
    """Whether ``host`` is an IP address in one of ``networks`` (``v4_mapped``: an IPv6
    address that maps an IPv4 one counts as that)."""
    try:
        addr: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if v4_mapped and isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return any(addr.version == n.version and addr in n for n in networks)


class DirectCallPolicy:
    """Which addresses may call atende without a trunk (ATENDE_ALLOW_DIRECT)."""

    def __init__(self, cidrs: Iterable[str] | None = None) -> None:
        self.networks = parse_cidrs(cidrs if cidrs is not None else DEFAULT_DIRECT)

    def allows(self, host: str) -> bool:
        return in_networks(host, self.networks, v4_mapped=True)
