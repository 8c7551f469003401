"""Dialogs (RFC 3261 §12) and the UAS's 2xx retransmission until the ACK (§13.3.1.4)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from enum import Enum

from atende.sip.headers import CSeq
from atende.sip.message import Request, Response
from atende.sip.requests import new_request
from atende.sip.transaction import T1, T2
from atende.sip.uri import NameAddr, SipUri


def new_tag() -> str:
    return secrets.token_hex(6)


class DialogState(Enum):
    """Where a dialog stands (RFC 3261 §12)."""

    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass
class Dialog:
    """A SIP dialog (RFC 3261 §12): its identifiers, route set and sequence numbers, the
    requests built inside it, and the retransmission of our 2xx until its ACK."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str  # our From/To value without tag
    remote_uri: str
    remote_target: SipUri
    local_contact: str
    route_set: list[str] = field(default_factory=list)
    local_seq: int = 0
    remote_seq: int | None = None
    state: DialogState = DialogState.EARLY
    # 2xx retransmission state (UAS side, unreliable transports only)
    pending_2xx: Response | None = None
    retx_at: float | None = None
    retx_interval: float = T1
    give_up_at: float | None = None
    pending_2xx_address: tuple[str, str, int] | None = None

    @property
    def id(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def for_uas(cls, invite: Request, local_tag: str, local_contact: str) -> Dialog:
        contact = invite.headers.get_all("Contact")
        if not contact:
            raise ValueError("INVITE without Contact")
        remote, to = invite.from_, invite.to
        return cls(
            call_id=invite.call_id,
            local_tag=local_tag,
            remote_tag=remote.tag or "",
            local_uri=str(_untagged(to)),
            remote_uri=str(_untagged(remote)),
            remote_target=invite.contact.uri,
            local_contact=local_contact,
            route_set=invite.headers.get_all("Record-Route"),
            local_seq=secrets.randbelow(2**20) + 1,
            remote_seq=invite.cseq.number,
        )

    @classmethod
    def for_uac(cls, invite: Request, resp: Response) -> Dialog:
        """The dialog a 2xx to our INVITE creates (§12.1.2): route set reversed."""
        contact = resp.headers.get_all("Contact")
        if not contact:
            raise ValueError("2xx without Contact")
        from_, to = invite.from_, resp.to
        return cls(
            call_id=invite.call_id, local_tag=from_.tag or "", remote_tag=to.tag or "",
            local_uri=str(_untagged(from_)), remote_uri=str(_untagged(to)),
            remote_target=NameAddr.parse(contact[0]).uri,
            local_contact=invite.headers.get("Contact") or "",
            route_set=list(reversed(resp.headers.get_all("Record-Route"))),
            local_seq=invite.cseq.number, remote_seq=None, state=DialogState.CONFIRMED,
        )

    def ack(self, invite_cseq: int, body: bytes = b"") -> Request:
        """The ACK for a 2xx: its own transaction, the INVITE's CSeq number (§13.2.2.4)."""
        return self._request("ACK", invite_cseq, body, None)

    def accept_remote_cseq(self, cseq: CSeq) -> bool:
        """In-dialog requests must not go backwards (§12.2.2): False means answer 500."""
        if cseq.method in ("ACK", "CANCEL"):
            return True
        if self.remote_seq is not None and cseq.number <= self.remote_seq:
            return False
        self.remote_seq = cseq.number
        return True

    def create_request(
        self, method: str, body: bytes = b"", content_type: str | None = None
    ) -> Request:
        """A request inside this dialog, without Via (the transport layer adds it)."""
        if method != "ACK":
            self.local_seq += 1
        return self._request(method, self.local_seq, body, content_type)

    def _request(self, method: str, cseq: int, body: bytes, content_type: str | None
                 ) -> Request:
        return new_request(method, self.remote_target, f"{self.local_uri};tag={self.local_tag}",
                           f"{self.remote_uri};tag={self.remote_tag}", self.call_id, cseq,
                           contact=self.local_contact, route=self.route_set, body=body,
                           content_type=content_type or None)

    def next_hop(self) -> SipUri:
        if self.route_set:
            return NameAddr.parse(self.route_set[0]).uri
        return self.remote_target

    # 2xx retransmission ------------------------------------------------------------------
    def start_2xx(self, resp: Response, now: float, address: tuple[str, str, int]) -> None:
        reliable = address[0] != "udp"
        self.pending_2xx = resp
        self.pending_2xx_address = address
        self.give_up_at = now + 64 * T1
        self.retx_interval = T1
        self.retx_at = None if reliable else now + T1

    def on_ack(self) -> None:
        self.pending_2xx = None
        self.retx_at = None
        self.give_up_at = None
        if self.state == DialogState.EARLY:
            self.state = DialogState.CONFIRMED

    def next_deadline(self) -> float | None:
        times = [t for t in (self.retx_at, self.give_up_at) if t is not None]
        return min(times) if times else None

    def tick(self, now: float) -> tuple[Response | None, bool]:
        """Returns (2xx to resend, ack_timed_out)."""
        if self.pending_2xx is None:
            return None, False
        if self.give_up_at is not None and now >= self.give_up_at:
            self.pending_2xx = None
            self.retx_at = self.give_up_at = None
            return None, True
        if self.retx_at is not None and now >= self.retx_at:
            self.retx_interval = min(2 * self.retx_interval, T2)
            self.retx_at = now + self.retx_interval
            return self.pending_2xx, False
        return None, False


def _untagged(addr: NameAddr) -> NameAddr:
    """``addr`` without its tag (a copy: a message's parsed headers are shared)."""
    return NameAddr(addr.uri, addr.display,
                    {k: v for k, v in addr.params.items() if k != "tag"})
