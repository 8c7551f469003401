"""Which local addresses WebRTC offers the browser (its ICE host candidates).

aioice, under aiortc, gathers every non-loopback address of the machine and has no option
to choose: atende sets the addresses it gathers, so that a server bound to one address
offers that one (loopback included, for a browser on the same machine), and an operator
can name the address browsers reach (ATENDE_WEBRTC_ADDRESSES). No STUN or TURN server is
asked: atende is reached directly, on its LAN or public address."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import aioice.ice

_gather_all = aioice.ice.get_host_addresses


def offer_addresses(addresses: Sequence[str]) -> None:
    """Gather ICE candidates on ``addresses`` only (empty: every address but loopback,
    aioice's own choice)."""
    chosen = [str(ipaddress.ip_address(a)) for a in addresses]

    def gather(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        if not chosen:
            return _gather_all(use_ipv4, use_ipv6)
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = gather
