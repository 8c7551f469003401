"""Which local addresses WebRTC offers the browser (its ICE host candidates).

aioice, under aiortc, gathers every non-loopback address of the machine and has no option
to choose: atende sets the addresses it gathers, so that a server bound to one address
offers that one (loopback included, for a browser on the same machine), and an operator
can name the address browsers reach (ATENDE_WEBRTC_ADDRESSES). A call may name its own
(the bridge's ``wasmServerIP``) for the candidates gathered while it is answered. No STUN
or TURN server is asked: atende is reached directly, on its LAN or public address."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterator, Sequence
from contextvars import ContextVar

import aioice.ice

_gather_all = aioice.ice.get_host_addresses
_default: list[str] = []
# Gathering happens inside the task answering the offer, so a context variable names the
# addresses of that one call without touching any other.
_this_call: ContextVar[tuple[str, ...] | None] = ContextVar("ice_addresses", default=None)


def _gather(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    chosen = _this_call.get() or _default
    if not chosen:
        return _gather_all(use_ipv4, use_ipv6)
    return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]


def offer_addresses(addresses: Sequence[str]) -> None:
    """Gather ICE candidates on ``addresses`` only (empty: every address but loopback,
    aioice's own choice)."""
    _default[:] = [str(ipaddress.ip_address(a)) for a in addresses]
    aioice.ice.get_host_addresses = _gather


@contextlib.contextmanager
def addresses_for_call(addresses: Sequence[str]) -> Iterator[None]:
    """Within this block (this task), gather on ``addresses`` instead (empty: the
    default)."""
    aioice.ice.get_host_addresses = _gather
    token = _this_call.set(tuple(str(ipaddress.ip_address(a)) for a in addresses) or None)
    try:
        yield
    finally:
        _this_call.reset(token)
