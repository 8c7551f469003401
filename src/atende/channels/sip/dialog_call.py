"""The SIP channel's record of a call that has a dialog (either direction)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from atende.channels.leg import CallInfo
from atende.channels.sip.leg import SipLeg
from atende.sip.auth import DigestClient
from atende.sip.invite import InviteSession
from atende.sip.message import Request
from atende.sip.refer import Progress
from atende.sip.transaction import Address


@dataclass
class DialogCall:
    """A call of the SIP channel once it has a dialog (either direction): its leg, its INVITE
    session, and what the channel keeps to answer the odd request of it."""

    info: CallInfo
    session: InviteSession
    leg: SipLeg
    # (Call-ID, From tag, CSeq) of the INVITE we answered: a merged request (§8.2.2.2)
    invite_key: tuple[str, str, int] | None = None
    ack: Request | None = None  # our ACK for their 2xx (calls we placed), resent if lost
    # What answers the far end's challenges to our in-dialog requests (calls we placed
    # through a trunk: its credentials).
    credentials: DigestClient | None = field(default=None, repr=False)
    transfer: asyncio.Future[Progress] | None = None  # our REFER, waiting for its outcome
    connected: bool = False  # the router has the leg

    @property
    def peer(self) -> Address:
        return self.session.peer
