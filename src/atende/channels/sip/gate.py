"""What the SIP channel asks before taking an incoming call, and the possible answers.
Implemented by telephony/inbound.py (trunks, allowlists, digest)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from atende.sip.message import Request


@dataclass(frozen=True)
class Admit:
    """Take the call."""

    trunk_id: str | None  # the trunk the call came in on; None: a direct call


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

    def check(self, req: Request, source_ip: str, now: float) -> GateResult: ...

    def trunk_address(self, source_ip: str) -> bool:
        """Whether ``source_ip`` is a trunk's own PBX or carrier (never to be blocked)."""
        ...
