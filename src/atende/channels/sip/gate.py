"""What the SIP channel asks before taking an incoming call, and the possible answers.
Implemented by telephony/inbound.py (trunks, allowlists, digest)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from atende.sip.message import Request
from atende.sip.transaction import Address


@dataclass(frozen=True)
class Admit:
    """Take the call."""

    trunk_id: str | None  # the trunk the call came in on; None: a direct call
    # Who the caller is, in the gate's words, for the router (CallInfo.extra["caller"]):
    # the bridge's gate says "sip_server" for its SIP server's calls.
    caller: str | None = None


@dataclass(frozen=True)
class Refuse:
    """Refuse the call with this status."""

    status: int
    reason: str


@dataclass(frozen=True)
class Challenge:
    """Ask for digest credentials first."""

    www_authenticate: list[str]


GateResult = Admit | Refuse | Challenge


class Gate(Protocol):
    """What the SIP channel asks before taking an incoming call."""

    def check(self, req: Request, source: Address, now: float) -> GateResult:
        """Whether to take ``req`` that came from ``source`` (transport, ip, port)."""
        ...

    def trunk_address(self, source_ip: str) -> bool:
        """Whether ``source_ip`` is a trunk's own PBX or carrier (never to be blocked)."""
        ...
